"""Alembic environment of credit-drift, run programmatically by `credit_drift.storage.db.upgrade`.

The caller passes an open connection in `config.attributes["connection"]` (already inside a
transaction); the migration and the `alembic_version` table go to that connection's current
schema (PostgreSQL search_path), so no schema name is hard-coded anywhere.
"""

from alembic import context

from credit_drift.storage.schema import include_object, metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # Plain `alembic -x url=...` use: build an engine the same way the application does.
        from credit_drift.storage.db import make_engine

        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        if not url:
            raise RuntimeError(
                "no database: pass -x url=... or use credit_drift.storage.db.upgrade"
            )
        with make_engine(url).connect() as conn:
            _run(conn)
            conn.commit()
        return
    _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode makes future migrations portable.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError(
        "credit-drift migrations run online only (they create dialect-specific views)"
    )
run_migrations_online()
