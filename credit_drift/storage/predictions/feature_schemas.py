"""Feature schemas of the prediction log: each logged vector is packed in the order of a
registered `FeatureSchema`, stored once under its version hash."""

import datetime as dt

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from credit_drift.features import FeatureSchema
from credit_drift.storage.schema import feature_schemas


def _insert(conn: Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _register(conn: Connection, schema: FeatureSchema) -> str:
    if len(schema) == 0:
        raise ValueError("a feature schema with no features cannot be stored")
    version = schema.version
    # Every API request logs under a schema that is almost always stored already: a tiny
    # lookup is cheaper than sending the whole spec (about 20 KB at 419 features) each time.
    exists = conn.execute(
        sa.select(sa.literal(1)).where(feature_schemas.c.version == version)
    ).first()
    if exists is not None:
        return version
    stmt = _insert(conn, feature_schemas).values(
        version=version,
        feature_names=schema.names,
        spec=orjson.loads(schema.to_json()),
        created_at=dt.datetime.now(dt.UTC),
    )
    # A concurrent writer may register it between the lookup and here: not an error.
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))
    return version


def register_feature_schema(engine: Engine | Connection, schema: FeatureSchema) -> str:
    """Store `schema` under its version hash (no-op when already stored); returns the version."""
    if isinstance(engine, Connection):
        return _register(engine, schema)
    with engine.begin() as conn:
        return _register(conn, schema)


def load_feature_schema(engine: Engine | Connection, version: str) -> FeatureSchema:
    """The stored schema of `version`; LookupError naming it when unknown."""
    stmt = sa.select(feature_schemas.c.spec).where(feature_schemas.c.version == version)
    if isinstance(engine, Connection):
        spec = engine.execute(stmt).scalar_one_or_none()
    else:
        with engine.connect() as conn:
            spec = conn.execute(stmt).scalar_one_or_none()
    if spec is None:
        raise LookupError(f"feature schema version {version!r} is not stored")
    return FeatureSchema.from_dicts(spec["features"])
