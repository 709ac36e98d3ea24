"""Altair charts of the dashboard, built from the query frames (pure: frames in, charts out).

Also the reference-vs-current distribution of one feature, drawn from the stored reference
summary (exact values and counts) and the day's logged values: a picture for people, not a
statistic (the KS, PSI and shares shown beside it are the ones the pipeline stored).
"""

from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

#: Streamlit markdown badge color of each status.
STATUS_BADGES = {"OK": "green", "WARNING": "orange", "ALERT": "red", "NO_DATA": "gray"}
STATUS_COLORS = {"OK": "#2e7d32", "WARNING": "#ef6c00", "ALERT": "#c62828", "NO_DATA": "#9e9e9e"}
_STATUS_SCALE = alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values()))


def _dates(values) -> pd.Series:
    return pd.to_datetime(pd.Series(list(values), dtype=object).astype(str), utc=True)


def _day_axis() -> alt.X:
    # UTC days, one tick per day at most (labels thin out on long ranges).
    return alt.X(
        "day:T",
        title="day (UTC)",
        scale=alt.Scale(type="utc"),
        axis=alt.Axis(format="%Y-%m-%d", tickCount={"interval": "day", "step": 1}),
    )


def status_badges(timeline: pd.DataFrame) -> str:
    """One colored badge per day (Streamlit markdown): the statuses readable as text."""
    return " ".join(
        f":{STATUS_BADGES.get(s, 'gray')}-badge[{d.isoformat()} {s}]"
        for d, s in zip(timeline["report_date"], timeline["status"], strict=True)
    )


def drift_timeline_chart(
    timeline: pd.DataFrame, *, warning_pct: float, alert_pct: float
) -> alt.LayerChart:
    """Drift percentage per day over OK / WARNING / ALERT bands, points colored by the stored
    status, alert days marked with a triangle, the two thresholds as dashed lines."""
    data = timeline.assign(day=_dates(timeline["report_date"]))
    top = max(100.0, float(data["drift_percentage"].max(skipna=True) or 0))
    bands = pd.DataFrame(
        {
            "band": ["OK", "WARNING", "ALERT"],
            "y0": [0.0, warning_pct, alert_pct],
            "y1": [warning_pct, alert_pct, top],
        }
    )
    y = alt.Y("drift_percentage:Q", title="drifted features (%)", scale=alt.Scale(domain=[0, top]))
    x = _day_axis()
    band_layer = (
        alt.Chart(bands)
        .mark_rect(opacity=0.12)
        .encode(
            y="y0:Q",
            y2="y1:Q",
            color=alt.Color("band:N", scale=_STATUS_SCALE, legend=None),
        )
    )
    rules = pd.DataFrame(
        {
            "y": [warning_pct, alert_pct],
            "label": [f"WARNING {warning_pct:g}%", f"ALERT {alert_pct:g}%"],
        }
    )
    rule_layer = alt.Chart(rules).mark_rule(strokeDash=[4, 4], color="#555").encode(y="y:Q")
    rule_text = (
        alt.Chart(rules)
        .mark_text(align="left", dx=4, dy=-6, color="#555")
        .encode(y="y:Q", text="label:N", x=alt.value(0))
    )
    tooltip = [
        alt.Tooltip("day:T", format="%Y-%m-%d", formatType="utc"),
        "status:N",
        alt.Tooltip("drift_percentage:Q", format=".1f"),
        alt.Tooltip("weighted_drift_percentage:Q", format=".1f"),
        "n_features_drifted:Q",
        "n_predictions:Q",
    ]
    line = alt.Chart(data).mark_line(color="#37474f").encode(x=x, y=y)
    points = (
        alt.Chart(data)
        .mark_point(filled=True, size=110)
        .encode(
            x=x,
            y=y,
            color=alt.Color("status:N", scale=_STATUS_SCALE, title="status"),
            tooltip=tooltip,
        )
    )
    alerted = (
        alt.Chart(data[data["alerted"]])
        .mark_point(shape="triangle-down", size=260, color="#b71c1c", filled=True, yOffset=-16)
        .encode(x=x, y=y, tooltip=tooltip)
    )
    return alt.layer(band_layer, rule_layer, rule_text, line, points, alerted).properties(
        height=340
    )


def _series_chart(
    frame: pd.DataFrame, columns: dict[str, str], *, title: str, axis: alt.Axis, value_format: str
) -> alt.Chart:
    """Lines of per-day values, one per column of `columns` (column -> legend)."""
    data = frame.assign(day=_dates(frame["day"]))
    long = data.melt(id_vars=["day"], value_vars=list(columns), var_name="series")
    long["series"] = long["series"].map(columns)
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=_day_axis(),
            y=alt.Y("value:Q", title=title, axis=axis),
            color=alt.Color("series:N", title=None),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d", formatType="utc"),
                "series:N",
                alt.Tooltip("value:Q", format=value_format),
            ],
        )
        .properties(height=260)
    )


def rate_chart(frame: pd.DataFrame, columns: dict[str, str], *, title: str) -> alt.Chart:
    """Lines of per-day rates (0-1) shown as percentages; `columns` maps column -> legend."""
    return _series_chart(frame, columns, title=title, axis=alt.Axis(format="%"), value_format=".1%")


def lines_chart(frame: pd.DataFrame, columns: dict[str, str], *, title: str) -> alt.Chart:
    """Lines of per-day values (e.g. latency percentiles); `columns` maps column -> legend."""
    return _series_chart(frame, columns, title=title, axis=alt.Axis(), value_format=".2f")


def volume_chart(frame: pd.DataFrame, column: str, *, title: str) -> alt.Chart:
    data = frame.assign(day=_dates(frame["day"]))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=_day_axis(),
            y=alt.Y(f"{column}:Q", title=title),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d", formatType="utc"), f"{column}:Q"],
        )
        .properties(height=220)
    )


def score_heatmap(histogram: pd.DataFrame) -> alt.Chart:
    """Share of each day's predictions per probability bin: the score distribution over time."""
    data = histogram.assign(day=histogram["day"].astype(str))
    data["bin_label"] = data["bin_start"].map(lambda v: f"{v:.2f}")
    # Every band on the axis, empty ones included, so that the axis reads as [0, 1].
    width = float((data["bin_end"] - data["bin_start"]).iloc[0]) if len(data) else 0.05
    bands = [f"{k * width:.2f}" for k in range(round(1 / width))][::-1]
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("day:O", title="day (UTC)"),
            y=alt.Y(
                "bin_label:O",
                title="probability of default (bin start)",
                scale=alt.Scale(domain=bands),
            ),
            color=alt.Color("share:Q", title="share of the day", scale=alt.Scale(scheme="blues")),
            tooltip=[
                "day:O",
                "bin_start:Q",
                "bin_end:Q",
                "count:Q",
                alt.Tooltip("share:Q", format=".1%"),
            ],
        )
        .properties(height=320)
    )


# -- distributions -------------------------------------------------------------------------
@dataclass(frozen=True)
class Distribution:
    """Shares of the reference and of the day per bin (numeric) or category (categorical), and
    the missing shares beside them."""

    table: pd.DataFrame  # bin (label), order, reference, current
    ref_missing: float
    cur_missing: float
    n_current: int
    unseen: tuple[str, ...] = ()


def _weighted_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    cum = np.cumsum(counts)
    return float(values[min(np.searchsorted(cum, q * cum[-1]), len(values) - 1)])


def numeric_distribution(
    ref_values: np.ndarray,
    ref_counts: np.ndarray,
    ref_nan: int,
    current: pd.Series,
    *,
    n_bins: int = 30,
) -> Distribution:
    """Equal-width bins over the central 98% of both samples (values outside go to the end
    bins), so that one extreme value does not squash the picture."""
    cur = current.to_numpy(dtype=np.float64)
    cur_ok = cur[~np.isnan(cur)]
    ref_values = np.asarray(ref_values, dtype=np.float64)
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    lows, highs = [], []
    if ref_values.size:
        lows.append(_weighted_quantile(ref_values, ref_counts, 0.01))
        highs.append(_weighted_quantile(ref_values, ref_counts, 0.99))
    if cur_ok.size:
        lows.append(float(np.quantile(cur_ok, 0.01)))
        highs.append(float(np.quantile(cur_ok, 0.99)))
    if not lows:
        table = pd.DataFrame(columns=["bin", "order", "reference", "current"])
        return Distribution(table, 0.0, 0.0, len(cur))
    lo, hi = min(lows), max(highs)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, n_bins + 1)
    ref_hist = np.histogram(np.clip(ref_values, lo, hi), bins=edges, weights=ref_counts)[0]
    cur_hist = np.histogram(np.clip(cur_ok, lo, hi), bins=edges)[0].astype(np.float64)
    table = pd.DataFrame(
        {
            "bin": [f"{a:.4g}" for a in edges[:-1]],
            "order": np.arange(n_bins),
            "reference": ref_hist / max(ref_hist.sum(), 1.0),
            "current": cur_hist / max(cur_hist.sum(), 1.0),
        }
    )
    ref_total = ref_counts.sum() + ref_nan
    return Distribution(
        table,
        ref_missing=float(ref_nan / ref_total) if ref_total else 0.0,
        cur_missing=float(np.isnan(cur).mean()) if cur.size else 0.0,
        n_current=len(cur),
    )


def categorical_distribution(
    categories: tuple[str, ...], counts: np.ndarray, ref_nan: int, current: pd.Series
) -> Distribution:
    """Shares per category; categories the training data never had are listed as unseen."""
    cur = current.astype(object)
    missing = cur.isna()
    observed = cur[~missing].astype(str).value_counts()
    names = list(categories) + sorted(set(observed.index) - set(categories))
    ref = pd.Series(np.asarray(counts, dtype=np.float64), index=list(categories))
    ref_share = ref.reindex(names, fill_value=0.0) / max(ref.sum(), 1.0)
    cur_share = observed.reindex(names, fill_value=0).astype(np.float64) / max(observed.sum(), 1)
    table = pd.DataFrame(
        {
            "bin": names,
            "order": np.arange(len(names)),
            "reference": ref_share.to_numpy(),
            "current": cur_share.to_numpy(),
        }
    )
    ref_total = ref.sum() + ref_nan
    return Distribution(
        table,
        ref_missing=float(ref_nan / ref_total) if ref_total else 0.0,
        cur_missing=float(missing.mean()) if len(cur) else 0.0,
        n_current=len(cur),
        unseen=tuple(sorted(set(observed.index) - set(categories))),
    )


def distribution_chart(dist: Distribution, *, feature: str) -> alt.Chart:
    long = dist.table.melt(
        id_vars=["bin", "order"], value_vars=["reference", "current"], var_name="sample"
    )
    long["sample"] = long["sample"].map({"reference": "training reference", "current": "the day"})
    return (
        alt.Chart(long)
        .mark_bar(opacity=0.85)
        .encode(
            x=alt.X("bin:N", sort=alt.SortField("order"), title=feature),
            xOffset="sample:N",
            y=alt.Y("value:Q", title="share", axis=alt.Axis(format="%")),
            color=alt.Color(
                "sample:N",
                title=None,
                scale=alt.Scale(
                    domain=["training reference", "the day"], range=["#90a4ae", "#d84315"]
                ),
            ),
            tooltip=["bin:N", "sample:N", alt.Tooltip("value:Q", format=".1%")],
        )
        .properties(height=280)
    )
