"""The API's endpoints, one `APIRouter` per concern, included by `serving.app.create_app`."""
