"""The Streamlit script of `credit-drift dashboard` (`streamlit run credit_drift/dashboard/app.py`).

Reads the database named by the settings (DATABASE_URL / CREDIT_DRIFT_HOME), shows "no data yet"
on an empty or unmigrated database, and otherwise the pages of `credit_drift.dashboard.pages`
with one date-range filter in the sidebar shared by every page.
"""

import datetime as dt

import sqlalchemy as sa
import streamlit as st

from credit_drift.dashboard.pages import PAGES, View
from credit_drift.settings import Settings, redact_url
from credit_drift.storage import dashboard_queries as q
from credit_drift.storage.db import make_engine

NO_DATA = "No data yet"


def _redacted(url: str) -> str:
    # SQLAlchemy's hide_password leaves a `?password=...` query parameter visible.
    return redact_url(url)


def _no_data(settings: Settings, why: str) -> None:
    st.title("credit-drift")
    st.info(
        f"**{NO_DATA}.** {why}\n\n"
        "Predictions appear once the scoring API (`credit-drift serve`) or the simulator has "
        "logged some; drift reports once the daily partitions are materialized "
        "(`credit-drift materialize --reference --from DAY --to DAY`). "
        "`credit-drift demo` builds a complete example: then "
        "`credit-drift dashboard --home .credit-drift/demo`.",
        icon=":material/hourglass_empty:",
    )
    st.caption(f"database: {_redacted(settings.database_url)}")


def _date_range(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    chosen = st.sidebar.date_input(
        "days (UTC)", value=(first, last), min_value=first, max_value=last, key="days"
    )
    if isinstance(chosen, tuple | list) and len(chosen) == 2:
        return chosen[0], chosen[1]
    # Half-picked range (one click): show from that day on.
    start = chosen[0] if isinstance(chosen, tuple | list) and chosen else first
    return start, last


def main() -> None:
    st.set_page_config(page_title="credit-drift", page_icon=":material/monitoring:", layout="wide")
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    try:
        extent = q.data_extent(engine) if q.has_dashboard_tables(engine) else None
    except sa.exc.DBAPIError as exc:
        st.title("credit-drift")
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
        st.error(
            f"Cannot reach the database {_redacted(settings.database_url)}: "
            f"{reason[0] if reason else type(exc).__name__}. Check DATABASE_URL (or --home) and "
            "that the server is up, then reload this page.",
            icon=":material/error:",
        )
        return
    if extent is None:
        _no_data(
            settings, "The database has no credit-drift tables yet (`credit-drift db upgrade`)."
        )
        return
    days = extent.day_range()
    if days is None:
        _no_data(settings, "The database has no predictions, API requests or drift reports.")
        return
    st.sidebar.title("credit-drift")
    first, last = _date_range(*days)
    st.sidebar.caption(
        f"{extent.n_reports} daily drift reports, {extent.n_predictions:,} predictions, "
        f"{extent.n_api_requests:,} API requests in {_redacted(settings.database_url)}"
    )
    view = View(settings=settings, first=first, last=last)
    pages = [
        st.Page(
            (lambda spec=spec: spec.render(view)),
            title=spec.title,
            url_path=spec.url_path,
            icon=spec.icon,
            default=i == 0,
        )
        for i, spec in enumerate(PAGES)
    ]
    st.navigation(pages).run()


main()
