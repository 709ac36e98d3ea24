"""The one Dagster resource: where the prediction log, the model artifacts and the reports live.

Empty fields fall back to the environment (`credit_drift.settings`), so the same definitions run
the demo (SQLite under the state directory) and production (DATABASE_URL pointing at PostgreSQL)
without code changes. Nothing is opened at import or construction time.
"""

from pathlib import Path

import dagster as dg

from credit_drift.settings import Settings


class CreditDriftResource(dg.ConfigurableResource):
    """Project configuration for the drift assets. Leave a field empty to use its environment
    variable (see `credit-drift env`)."""

    database_url: str = ""
    artifacts_dir: str = ""
    training_data: str = ""
    reports_dir: str = ""
    policy: str = ""
    evidently_max_columns: int = 30
    evidently_all_columns: bool = False

    def settings(self) -> Settings:
        overrides: dict = {}
        if self.database_url:
            overrides["database_url"] = self.database_url
        if self.artifacts_dir:
            overrides["artifacts_dir"] = Path(self.artifacts_dir)
        if self.training_data:
            overrides["training_data"] = Path(self.training_data)
        if self.reports_dir:
            overrides["reports_dir"] = Path(self.reports_dir)
        if self.policy:
            overrides["policy"] = self.policy
        return Settings.from_env(**overrides)

    def engine(self):
        from credit_drift.storage.db import make_engine, upgrade

        url = self.settings().database_url
        # Migrating is idempotent and cheap; it lets a fresh state directory just work.
        upgrade(url)
        return make_engine(url)

    def artifacts(self):
        from credit_drift.model.artifacts import load_artifacts

        return load_artifacts(self.settings().artifacts_dir)
