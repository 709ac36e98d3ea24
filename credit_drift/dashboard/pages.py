"""The dashboard's pages. Each page is a function of a `View` (settings + the chosen date range)
that reads through the cached queries below; `PAGES` is the registry `app.py` builds the
navigation from.

Adding a page: write its read-only queries in `credit_drift.storage.dashboard_queries` (or
reuse the pipeline's, as the Performance page does), a function `x_page(view)` here, and one
`PageSpec` line in `PAGES`.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from credit_drift.dashboard import charts
from credit_drift.settings import Settings
from credit_drift.storage import dashboard_queries as q
from credit_drift.storage.db import make_engine

CACHE_TTL_S = 30  # the pipeline writes at most a few rows a minute; a page refresh within 30 s


@dataclass(frozen=True)
class View:
    """What every page is given: the settings and the inclusive day range chosen."""

    settings: Settings
    first: dt.date
    last: dt.date

    @property
    def url(self) -> str:
        return self.settings.database_url


@dataclass(frozen=True)
class PageSpec:
    title: str
    url_path: str
    icon: str
    render: Callable[[View], None]


# -- cached reads (keyed by the database URL and the arguments) -----------------------------
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def timeline(url: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    return q.drift_timeline(make_engine(url), first, last)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def alerts(url: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    return q.alerts(make_engine(url), first, last)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def day_features(url: str, day: dt.date) -> pd.DataFrame:
    return q.day_features(make_engine(url), day)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def decisions(url: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    return q.decisions_by_day(make_engine(url), first, last)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def traffic(url: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    return q.api_traffic_by_day(make_engine(url), first, last)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def scores(url: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    return q.score_histogram(make_engine(url), first, last)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def distribution(url: str, day: dt.date, feature: str) -> charts.Distribution | None:
    from credit_drift.stats.reference import feature_reference_from_record

    engine = make_engine(url)
    stored = q.reference_feature(engine, feature)
    if stored is None:
        return None
    ref = feature_reference_from_record(
        stored.feature, stored.kind, stored.summary, stored.nan_count
    )
    current = q.feature_values(engine, day, feature)
    if stored.kind == "categorical":
        return charts.categorical_distribution(ref.categories, ref.counts, ref.nan_count, current)
    return charts.numeric_distribution(ref.values, ref.counts, ref.nan_count, current)


def _day_keys(first: dt.date, last: dt.date) -> list[str]:
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def realized(
    url: str, first: dt.date, last: dt.date, horizon_days: float, artifacts_dir: str
) -> pd.DataFrame | None:
    """Each day's realized performance as of now (`credit-drift status`'s numbers); None when
    no outcome was ever recorded."""
    import datetime as dt_

    from credit_drift.pipeline.performance_by_day import model_metrics, realized_by_day
    from credit_drift.storage.outcomes import latest_outcome_change

    engine = make_engine(url)
    if latest_outcome_change(engine) is None:
        return None
    return realized_by_day(
        engine,
        _day_keys(first, last),
        as_of=dt_.datetime.now(dt_.UTC),
        horizon_days=horizon_days,
        model_metrics=model_metrics(artifacts_dir),
    )


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def estimated(
    url: str,
    first: dt.date,
    last: dt.date,
    artifacts_dir: str,
    min_estimated_auc: float,
    _settings: Settings,
) -> tuple[pd.DataFrame | None, str]:
    """(each day's label-free estimate, "") or (None, why it cannot be estimated). The cache
    key is the URL, the range, the artifacts folder and the AUC bound (`_settings`, which they
    come from, is not hashed)."""
    from credit_drift.model.artifacts import ArtifactsError, load_artifacts
    from credit_drift.pipeline.config import PipelineConfig
    from credit_drift.pipeline.estimated import EstimateUnavailableError, cbpe_reference
    from credit_drift.pipeline.performance_by_day import estimated_by_day

    try:
        artifacts = load_artifacts(artifacts_dir)
        reference = cbpe_reference(artifacts)
    except (ArtifactsError, EstimateUnavailableError) as exc:
        return None, str(exc)
    config = PipelineConfig.from_settings(_settings)
    frame = estimated_by_day(make_engine(url), artifacts, reference, _day_keys(first, last), config)
    return frame, ""


# -- helpers ---------------------------------------------------------------------------------
def _pct(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.1f}%"


def _share(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def _alert_about(alert) -> str:
    """What an alert row is about: the top drifted features, or the estimated AUC against its
    bound."""
    if alert.kind == "estimated_performance":
        details = alert.details or {}
        auc, bound = details.get("estimated_auc"), details.get("min_auc")
        shown = "-" if auc is None else f"{auc:.3f}"
        return f"estimated AUC {shown} (bound {'-' if bound is None else f'{bound:g}'})"
    return ", ".join(list(alert.top_features or [])[:5])


def dagster_partition_url(settings: Settings, day: dt.date) -> str:
    """The day's drift_report partition in the Dagster UI (its materialization, metadata and
    the run that made it)."""
    return f"{settings.dagster_url}/assets/drift_report?view=partitions&partition={day.isoformat()}"


def evidently_report_path(settings: Settings, day: dt.date) -> Path:
    return settings.reports_dir / day.isoformat() / "evidently_report.html"


def _nothing_in_range(what: str) -> None:
    st.info(f"No {what} between the dates chosen in the sidebar.")


# -- pages -------------------------------------------------------------------------------------
def timeline_page(view: View) -> None:
    st.header("Drift timeline")
    frame = timeline(view.url, view.first, view.last)
    if frame.empty:
        _nothing_in_range("drift report")
        return
    s = view.settings
    latest = frame.iloc[-1]
    found = alerts(view.url, view.first, view.last)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("days monitored", len(frame))
    c2.metric(f"latest day ({latest['report_date']})", latest["status"])
    c3.metric("latest drifted share", _pct(latest["drift_percentage"]))
    c4.metric("alerts raised", len(found))
    st.markdown(charts.status_badges(frame))
    st.altair_chart(
        charts.drift_timeline_chart(
            frame, warning_pct=100 * s.warning_share, alert_pct=100 * s.alert_share
        ),
        width="stretch",
    )
    st.caption(
        f"Share of the model's features that drifted each day (UTC). OK below "
        f"{100 * s.warning_share:g}%, WARNING up to {100 * s.alert_share:g}%, ALERT above; "
        "a triangle marks a day that raised an alert. Statuses are the pipeline's, as stored."
    )
    table = frame.assign(
        day=frame["report_date"].map(lambda d: f"day?day={d.isoformat()}"),
        alert=frame["alerted"].map({True: "alert raised", False: ""}),
    )
    st.dataframe(
        table[
            [
                "day",
                "status",
                "drift_percentage",
                "weighted_drift_percentage",
                "n_features_drifted",
                "n_features_analyzed",
                "n_predictions",
                "multivariate_score",
                "alert",
                "policy",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "day": st.column_config.LinkColumn("day", display_text=r"day=(.*)"),
            "drift_percentage": st.column_config.NumberColumn("drifted %", format="%.1f"),
            "weighted_drift_percentage": st.column_config.NumberColumn(
                "importance-weighted %", format="%.1f"
            ),
            "n_features_drifted": "drifted",
            "n_features_analyzed": "analyzed",
            "n_predictions": "predictions",
            "multivariate_score": st.column_config.NumberColumn("domain AUC", format="%.3f"),
        },
    )
    if len(found):
        st.subheader("Alerts")
        st.dataframe(
            found.assign(about=[_alert_about(a) for a in found.itertuples()])[
                ["report_date", "kind", "severity", "drift_percentage", "about", "webhook_status"]
            ],
            hide_index=True,
            width="stretch",
            column_config={
                "report_date": "day",
                "drift_percentage": st.column_config.NumberColumn("drifted %", format="%.1f"),
                "about": "top drifted features / estimate",
                "webhook_status": "webhook",
            },
        )


def day_page(view: View) -> None:
    st.header("One day in detail")
    frame = timeline(view.url, view.first, view.last)
    if frame.empty:
        _nothing_in_range("drift report")
        return
    days = list(frame["report_date"])
    wanted = st.query_params.get("day")
    default = len(days) - 1
    if wanted:
        try:
            default = days.index(dt.date.fromisoformat(wanted))
        except ValueError:
            st.warning(f"No drift report for {wanted} in the chosen range; showing the last day.")
    day = st.selectbox(
        "day", days, index=default, format_func=lambda d: f"{d}  ({_status_of(frame, d)})"
    )
    st.query_params["day"] = day.isoformat()
    row = frame.set_index("report_date").loc[day]
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("status", row["status"])
    c2.metric("drifted features", f"{row['n_features_drifted']}/{row['n_features_analyzed']}")
    c3.metric("drifted share", _pct(row["drift_percentage"]))
    c4.metric("importance-weighted", _pct(row["weighted_drift_percentage"]))
    c5.metric("predictions", f"{row['n_predictions']:,}")
    _day_links(view.settings, day)

    features = day_features(view.url, day)
    if features.empty:
        st.info(
            "No per-feature results stored for this day (an empty window, or feature_drift "
            "not materialized)."
        )
        return
    drifted = features[features["drifted"]]
    st.subheader(f"Drifted features, by model importance ({len(drifted)} of {len(features)})")
    shown = st.toggle("show every feature", value=drifted.empty)
    table = features if shown else drifted
    st.dataframe(
        table.assign(
            unseen_categories=table["unseen_categories"].map(
                lambda v: ", ".join(v) if isinstance(v, list | tuple) else ""
            )
        )[
            [
                "rank",
                "feature",
                "drifted",
                "reason",
                "importance",
                "test",
                "statistic",
                "p_adjusted",
                "psi",
                "ref_nan_share",
                "cur_nan_share",
                "unseen_share",
                "unseen_categories",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "statistic": st.column_config.NumberColumn("KS / test statistic", format="%.3f"),
            "p_adjusted": st.column_config.NumberColumn("p (adjusted)", format="%.2e"),
            "psi": st.column_config.NumberColumn("PSI", format="%.3f"),
            "importance": st.column_config.NumberColumn("importance", format="%.1f"),
            "ref_nan_share": st.column_config.NumberColumn("NaN share (training)", format="%.3f"),
            "cur_nan_share": st.column_config.NumberColumn("NaN share (day)", format="%.3f"),
            "unseen_share": st.column_config.NumberColumn("unseen share", format="%.3f"),
        },
    )
    options = list((drifted if len(drifted) else features)["feature"])
    feature = st.selectbox("distribution of", options, index=0)
    _feature_detail(view, day, features.set_index("feature").loc[feature], feature)


def _status_of(frame: pd.DataFrame, day: dt.date) -> str:
    return str(frame.loc[frame["report_date"] == day, "status"].iloc[0])


def _day_links(settings: Settings, day: dt.date) -> None:
    left, right = st.columns(2)
    left.link_button(
        "Open the day in Dagster (drift_report partition and its run)",
        dagster_partition_url(settings, day),
    )
    report = evidently_report_path(settings, day)
    if report.exists():
        right.download_button(
            f"Evidently report of {day} (HTML, {report.stat().st_size / 1e6:.1f} MB)",
            data=report.read_bytes,
            file_name=f"evidently_report_{day}.html",
            mime="text/html",
        )
        right.caption(f"on disk: {report}")
    else:
        right.caption(f"No Evidently report at {report} (evidently_report not materialized here).")


def _feature_detail(view: View, day: dt.date, result: pd.Series, feature: str) -> None:
    dist = distribution(view.url, day, feature)
    if dist is None:
        st.info(f"{feature}: no stored reference summary (is a reference profile active?).")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        f"{result['test']} statistic",
        f"{result['statistic']:.3f}" if pd.notna(result["statistic"]) else "-",
    )
    c2.metric("PSI", f"{result['psi']:.3f}" if pd.notna(result["psi"]) else "-")
    c3.metric(
        "NaN share (day vs training)",
        _share(result["cur_nan_share"]),
        delta=None
        if pd.isna(result["cur_nan_share"]) or pd.isna(result["ref_nan_share"])
        else f"{100 * (result['cur_nan_share'] - result['ref_nan_share']):+.1f} pts",
        delta_color="off",
    )
    c4.metric("unseen categories", _share(result["unseen_share"]))
    st.altair_chart(charts.distribution_chart(dist, feature=feature), width="stretch")
    st.caption(
        f"Training reference (stored profile) against the {dist.n_current:,} values logged on "
        f"{day}; missing: {_share(dist.ref_missing)} in training, {_share(dist.cur_missing)} "
        "that day."
        + (f" Categories never seen in training: {', '.join(dist.unseen)}." if dist.unseen else "")
    )


def scores_page(view: View) -> None:
    st.header("The model's scores and decisions")
    frame = decisions(view.url, view.first, view.last)
    if frame.empty:
        _nothing_in_range("prediction")
        return
    n_total = int(frame["n_predictions"].sum())
    c1, c2, c3 = st.columns(3)
    c1.metric("predictions", f"{n_total:,}")
    c2.metric(
        "approval rate (whole range)",
        _share(frame["n_approved"].sum() / frame["n_predictions"].sum()),
    )
    c3.metric(
        "mean probability of default",
        f"{(frame['mean_probability'] * frame['n_predictions']).sum() / n_total:.3f}",
    )
    st.subheader("Approval rate over time")
    st.altair_chart(
        charts.rate_chart(
            frame,
            {"approval_rate": "approved", "refusal_rate": "refused"},
            title="share of the day",
        ),
        width="stretch",
    )
    st.subheader("Score distribution per day")
    st.altair_chart(charts.score_heatmap(scores(view.url, view.first, view.last)), width="stretch")
    st.caption(
        "Share of each day's applications per band of predicted probability of default "
        "(20 bands of 0.05). Decisions use the threshold stored with each prediction."
    )


def operations_page(view: View) -> None:
    st.header("Operations")
    frame = decisions(view.url, view.first, view.last)
    api = traffic(view.url, view.first, view.last)
    if frame.empty and api.empty:
        _nothing_in_range("prediction or API request")
        return
    if len(frame):
        st.subheader("Predictions (by the day they were made)")
        st.altair_chart(
            charts.volume_chart(frame, "n_predictions", title="predictions"),
            width="stretch",
        )
        st.altair_chart(
            charts.lines_chart(
                frame,
                {f"inference_p{p}_ms": f"p{p}" for p in q.PERCENTILES},
                title="inference time per application (ms)",
            ),
            width="stretch",
        )
        st.altair_chart(
            charts.rate_chart(frame, {"refusal_rate": "refusal rate"}, title="share of the day"),
            width="stretch",
        )
    if len(api):
        st.subheader("API requests (by the day they reached the API)")
        st.caption(
            "From api_logs: every request, rejected ones included. Replayed traffic reaches the "
            "API on another day than its predictions' event time."
        )
        st.altair_chart(charts.volume_chart(api, "requests", title="requests"), width="stretch")
        st.altair_chart(
            charts.lines_chart(
                api,
                {f"latency_p{p}_ms": f"p{p}" for p in q.PERCENTILES},
                title="request latency (ms)",
            ),
            width="stretch",
        )
        st.altair_chart(
            charts.rate_chart(
                api,
                {"error_rate": "server errors (5xx)", "rejection_rate": "rejected (4xx)"},
                title="share of requests",
            ),
            width="stretch",
        )
        st.dataframe(api, hide_index=True, width="stretch")


def performance_page(view: View) -> None:
    st.header("Performance")
    s = view.settings
    real = realized(view.url, view.first, view.last, s.outcome_horizon_days, str(s.artifacts_dir))
    est, why_not = estimated(
        view.url, view.first, view.last, str(s.artifacts_dir), s.min_estimated_auc, s
    )
    if real is None:
        st.info(
            "No outcomes yet: realized performance appears once outcomes are recorded "
            "(`POST /outcomes` or `credit-drift outcomes load FILE`), each day's cohort "
            f"maturing over {s.outcome_horizon_days:g} days.",
            icon=":material/hourglass_empty:",
        )
    if est is None:
        st.warning(f"No label-free estimate: {why_not.rstrip('.')}.", icon=":material/warning:")
    if real is None and est is None:
        return
    frame = pd.DataFrame({"day": _day_keys(view.first, view.last)})
    if est is not None:
        frame = frame.merge(est.rename(columns={"status": "estimate_status"}), on="day")
    if real is not None:
        frame = frame.merge(real.rename(columns={"status": "cohort_status"}), on="day")
    if real is not None:
        c1, c2, c3 = st.columns(3)
        c1.metric("days with mature cohorts", int((real["status"] == "mature").sum()))
        c2.metric("outcomes observed", f"{int(real['n_labeled'].sum()):,}")
        c3.metric("predictions in range", f"{int(real['n'].sum()):,}")
    auc = {"estimated_auc": "estimated AUC", "auc": "realized AUC"}
    rates = {
        "estimated_default_rate": "estimated default rate",
        "observed_default_rate": "observed default rate",
        "mean_pd": "mean PD (labeled)",
    }
    st.subheader("AUC per day")
    st.altair_chart(
        charts.lines_chart(frame, {k: v for k, v in auc.items() if k in frame}, title="AUC"),
        width="stretch",
    )
    st.subheader("Default rate per day")
    st.altair_chart(
        charts.rate_chart(
            frame, {k: v for k, v in rates.items() if k in frame}, title="default rate"
        ),
        width="stretch",
    )
    st.caption(
        "Estimated: label-free, from each day's logged probabilities calibrated on the model's "
        "hold-out (it cannot see a change in P(default | features)). Realized: the outcomes "
        "observed by now, on the labeled share of the cohort only while it is partial. "
        "Days without a number have no prediction, no outcome yet, or one class only."
    )
    columns = {
        "day": "day",
        "estimate_status": "estimate",
        "estimated_auc": st.column_config.NumberColumn("est. AUC", format="%.3f"),
        "estimated_default_rate": st.column_config.NumberColumn("est. default rate", format="%.3f"),
        "estimated_cost_per_application": st.column_config.NumberColumn(
            "est. cost/app", format="%.3f"
        ),
        "cohort_status": "cohort",
        "labeled_share": st.column_config.NumberColumn("labeled", format="percent"),
        "observed_default_rate": st.column_config.NumberColumn("default rate", format="%.3f"),
        "mean_pd": st.column_config.NumberColumn("mean PD", format="%.3f"),
        "auc": st.column_config.NumberColumn("AUC", format="%.3f"),
        "cost_per_application": st.column_config.NumberColumn("cost/app", format="%.3f"),
        "n": "predictions",
    }
    shown = [c for c in columns if c in frame]
    st.dataframe(
        frame[shown],
        hide_index=True,
        width="stretch",
        column_config={c: columns[c] for c in shown},
    )


PAGES: tuple[PageSpec, ...] = (
    PageSpec("Drift timeline", "timeline", ":material/timeline:", timeline_page),
    PageSpec("One day", "day", ":material/search:", day_page),
    PageSpec("Scores and decisions", "scores", ":material/bar_chart:", scores_page),
    PageSpec("Performance", "performance", ":material/verified:", performance_page),
    PageSpec("Operations", "operations", ":material/speed:", operations_page),
)
