"""The scoring API: `app.create_app` (FastAPI), `server.run_server` (uvicorn), the request
validation, scoring and logging service behind them. Nothing is imported here, so importing the
package has no side effects (no model load, no database connection)."""
