"""`credit-drift dashboard`: a Streamlit app for the people who act on drift (risk managers,
validators) and do not open Dagster.

It reads the database only (`credit_drift.storage.dashboard_queries`), never recomputes a drift
statistic, and runs on SQLite and PostgreSQL alike. Pages are registered in
`credit_drift.dashboard.pages.PAGES`: a new page (e.g. realized and estimated performance, once
outcomes are stored) is one function there plus its queries in `dashboard_queries`.
"""
