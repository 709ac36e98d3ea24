"""The monitoring figures of the reference notebook, drawn as PNG files by the pipeline.

Owns: the KS bar chart (notebook section 4), reference-vs-production distributions of the top
features (section 6), the operational panel (section 7), the drift timeline across windows, and
`figure_markdown`, which inlines a PNG in markdown for Dagster's `MetadataValue.md`.

Every function takes plain pandas/numpy inputs, writes one PNG atomically (temporary file, then
rename) and returns its path. Empty inputs give an explicit "no data" figure, never an exception
or an empty-looking plot. Figures are built on matplotlib's Agg canvas directly (no pyplot): no
global figure registry to leak memory in a long-running Dagster process, no GUI backend, and
safe in threads. matplotlib is imported lazily so that importing this module stays cheap.
"""

import base64
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from credit_drift.settings import ENV_VARS

# The notebook's "moderate" KS guide line. Visual only: the drift decision is the stats policy's.
KS_GUIDE = 0.1

DPI = 100
# Distribution panels: bins, and the share of each tail folded into the edge bins.
N_BINS = 50
TAIL_QUANTILE = 0.005
# Inline images above this size are replaced by a link: Dagster stores metadata in its event
# log, and a few hundred KB per materialization adds up over months of daily partitions.
MAX_INLINE_BYTES = 150_000

# Colours of the notebook.
RED, GREEN, ORANGE, NAVY = "#D32F2F", "#388E3C", "#F57C00", "#1B2A4A"
REFERENCE_COLOR, PRODUCTION_COLOR = "#1D6A4B", "#8B2D2D"
STATUS_COLORS = {"OK": GREEN, "WARNING": ORANGE, "ALERT": RED}
DECISION_COLORS = {"APPROVED": GREEN, "REFUSED": RED}
NO_DATA_STATUS = "NO_DATA"


def _default_pct(env_name: str) -> float:
    # The timeline's bands default to the configured status thresholds' defaults (settings.py),
    # so this module holds no second copy of them.
    return 100.0 * float(next(v.default for v in ENV_VARS if v.name == env_name))


DEFAULT_WARNING_PCT = _default_pct("CREDIT_DRIFT_WARNING_SHARE")
DEFAULT_ALERT_PCT = _default_pct("CREDIT_DRIFT_ALERT_SHARE")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- shared helpers -------------------------------------------------------------------------
def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    _drop_spent_layout_engine(fig)
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; figures are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        fig.clear()
    return path


def _drop_spent_layout_engine(fig: Any) -> None:
    """`Figure.tight_layout` lays the figure out once and leaves a placeholder layout engine
    behind; `savefig` then draws the whole figure once more (without output) for that engine
    before drawing it for the PNG, although the placeholder changes nothing. Removing it skips
    that draw; the PNG is the same, byte for byte."""
    import matplotlib as mpl
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        # None means "no engine" only when the rcParams ask for none (a user's matplotlibrc
        # could ask for one).
        with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)


def _no_data(ax: Any, message: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=12,
        color="gray",
        transform=ax.transAxes,
        wrap=True,
    )


def _no_data_figure(path: Path | str, title: str, message: str) -> Path:
    fig = _figure(8, 3)
    ax = fig.add_subplot()
    ax.set_title(title, fontweight="bold")
    _no_data(ax, message)
    fig.tight_layout()
    return _save(fig, path)


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# -- notebook section 4: KS statistic of the top features -----------------------------------
def plot_ks_top_features(
    results: pd.DataFrame, path: Path | str, top_n: int = 20, guide: float = KS_GUIDE
) -> Path:
    """Horizontal bars of the KS statistic of the `top_n` features with the largest statistic:
    drifted ones red, others green, an orange dashed guide line at `guide`, largest on top.

    `results` has columns `feature`, `statistic`, `drifted` (and optionally `test`: then only
    KS rows are drawn, since a chi-square statistic is on another scale). Rows with a NaN
    statistic cannot be drawn as bars; their number is written under the title."""
    title = f"Top {top_n} features: KS statistic (reference vs production)"
    frame = results
    if "test" in frame.columns and len(frame):
        frame = frame[frame["test"].astype(str).str.lower().str.startswith("ks")]
    stat = pd.to_numeric(frame.get("statistic", pd.Series(dtype=float)), errors="coerce")
    n_nan = int(stat.isna().sum())
    frame = frame.assign(_stat=stat)[stat.notna()]
    if frame.empty:
        message = "no KS statistic to show"
        if n_nan:
            message += f" ({n_nan} feature(s) without a statistic)"
        return _no_data_figure(path, title, message)
    top = frame.sort_values("_stat", ascending=False, kind="stable").head(top_n)
    drifted = top["drifted"].fillna(False).astype(bool).to_numpy()

    fig = _figure(12, max(3.0, 1.0 + 0.35 * len(top)))
    ax = fig.add_subplot()
    y = np.arange(len(top))
    ax.barh(y, top["_stat"].to_numpy(), color=[RED if d else GREEN for d in drifted])
    ax.set_yticks(y)
    ax.set_yticklabels([_short(str(f), 30) for f in top["feature"]], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("KS statistic")
    ax.axvline(
        guide, color="orange", linestyle="--", alpha=0.7, label=f"moderate threshold ({guide:g})"
    )
    from matplotlib.patches import Patch

    handles = [
        Patch(color=RED, label="drifted"),
        Patch(color=GREEN, label="not drifted"),
        *ax.get_legend_handles_labels()[0],
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=9)
    ax.set_xlim(0, max(1.05 * float(top["_stat"].max()), guide * 1.2))
    subtitle = f"\n{n_nan} feature(s) without a KS statistic not shown" if n_nan else ""
    ax.set_title(title + subtitle, fontweight="bold")
    fig.tight_layout()
    return _save(fig, path)


# -- why the score moved ----------------------------------------------------------------------
def plot_score_attribution(
    table: pd.DataFrame,
    path: Path | str,
    *,
    mean_log_odds_change: float,
    mean_probability_change: float,
    top_n: int = 15,
) -> Path:
    """Horizontal bars of the `top_n` features that moved the mean score most (`table` as
    `stats.attribution.ScoreAttribution.table`, ranked): red pushes the score (risk) up, blue
    down, largest on top; the totals in the title."""
    title = (
        f"Why the score moved: mean log-odds {mean_log_odds_change:+.3f} "
        f"(mean probability {100 * mean_probability_change:+.2f} points)"
    )
    if table.empty:
        return _no_data_figure(path, title, "no features to attribute")
    top = table.head(top_n)
    change = top["contribution_change"].to_numpy(dtype=np.float64)
    fig = _figure(12, max(3.0, 1.2 + 0.35 * len(top)))
    ax = fig.add_subplot()
    y = np.arange(len(top))
    ax.barh(y, change, color=[RED if c > 0 else "#2B5C8A" for c in change])
    ax.set_yticks(y)
    ax.set_yticklabels([_short(str(f), 30) for f in top["feature"]], fontsize=9)
    ax.invert_yaxis()
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("change in mean contribution to the log-odds of default (window - reference)")
    ax.set_title(title, fontweight="bold", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def plot_estimated_performance(
    estimate: Any, bands: Mapping[str, Any] | None, check: Any, min_auc: float, path: Path | str
) -> Path:
    """1x4 panel of a day's label-free estimate (`stats.cbpe`): the hold-out's reliability
    (raw and cross-fitted calibrated PD against the observed default rate, per score decile),
    then the estimated AUC, default rate and cost per application, each as a point against its
    reference band (shaded) and, for the AUC, the configured bound (red line)."""
    fig = _figure(16, 4.2)
    ax_rel, *axes = fig.subplots(1, 4)
    rel = check.reliability
    top = max(float(rel["predicted"].max()), float(rel["observed"].max()), 1e-3)
    ax_rel.plot([0, top], [0, top], color="gray", linewidth=0.8, linestyle="--")
    ax_rel.plot(rel["predicted"], rel["observed"], "o-", color=RED, label="raw model")
    ax_rel.plot(rel["calibrated"], rel["observed"], "o-", color=GREEN, label="calibrated")
    ax_rel.set_xlabel("mean predicted PD (hold-out decile)")
    ax_rel.set_ylabel("observed default rate")
    ax_rel.set_title(
        f"Hold-out calibration: ECE {check.raw_ece:.3f} raw, {check.calibrated_ece:.3f} calibrated",
        fontsize=10,
    )
    ax_rel.legend(fontsize=8)
    labels = {
        "auc": "estimated AUC",
        "default_rate": "estimated default rate",
        "cost_per_application": "estimated cost / application",
    }
    for ax, (name, label) in zip(axes, labels.items(), strict=True):
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        if estimate is None:
            _no_data(ax, "no predictions")
            continue
        value = estimate.metric(name)
        band = (bands or {}).get(name)
        inside = band is None or band.contains(value)
        if band is not None:
            ax.axhspan(band.lower, band.upper, color=GREEN, alpha=0.15, label="reference band")
            ax.axhline(band.mean, color=GREEN, linewidth=0.8)
        if name == "auc" and min_auc > 0:
            ax.axhline(min_auc, color=RED, linewidth=1.2, label=f"bound {min_auc:g}")
        ax.plot([0], [value], "o", markersize=10, color=GREEN if inside else ORANGE)
        ax.annotate(f"{value:.4g}", (0, value), xytext=(10, 0), textcoords="offset points")
        ax.set_xlim(-1, 1)
        if band is not None or name == "auc":
            ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- notebook section 6: distributions of the top features ---------------------------------
def plot_feature_distributions(
    reference_columns: Mapping[str, tuple[np.ndarray, np.ndarray, int]],
    current: pd.DataFrame,
    features: Sequence[str],
    ks: Mapping[str, float],
    path: Path | str,
) -> Path:
    """2x3 grid: density histograms of the reference (training) and the production window for
    the first six of `features` (pass them most important first), with the KS statistic in each
    title.

    The reference is given as summaries `{name: (distinct values, counts, nan_count)}` and drawn
    with the counts as histogram weights, so a 50,000-row column is never expanded. Both sides
    share the same bins. A feature whose reference values are not numeric is drawn as side by
    side bars of category shares (production categories unseen in training included).
    """
    title = "Distributions: top features (reference vs production)"
    shown = list(features)[:6]
    if len(current) == 0 or not shown:
        why = "no production rows in this window" if len(current) == 0 else "no feature to show"
        return _no_data_figure(path, title, why)

    fig = _figure(16, 8)
    axes = fig.subplots(2, 3).ravel()
    for ax, name in zip(axes, shown, strict=False):
        summary = reference_columns.get(name)
        cur = current[name] if name in current.columns else None
        ks_value = _finite(ks.get(name))
        heading = (
            f"{_short(name, 40)}\nKS = {ks_value:.3f}"
            if ks_value is not None
            else (f"{_short(name, 40)}\nKS = n/a")
        )
        if summary is None or cur is None:
            ax.set_title(heading, fontsize=10, fontweight="bold")
            _no_data(ax, "not in the reference" if summary is None else "not in the window")
            continue
        values, counts, nan_count = (
            np.asarray(summary[0]),
            np.asarray(summary[1]),
            int(summary[2]),
        )
        n_ref = int(counts.sum()) + nan_count
        nan_ref = nan_count / n_ref if n_ref else math.nan
        nan_cur = float(cur.isna().mean())
        if nan_ref > 0 or nan_cur > 0:
            heading += f" | missing: ref {nan_ref:.1%}, prod {nan_cur:.1%}"
        ax.set_title(heading, fontsize=10, fontweight="bold")
        if values.dtype.kind in "iufb":
            _numeric_panel(ax, values.astype(np.float64), counts, cur)
        else:
            _categorical_panel(ax, values, counts, cur)
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=14, fontweight="bold")
    fig.tight_layout()
    return _save(fig, path)


def _numeric_panel(ax: Any, values: np.ndarray, counts: np.ndarray, current: pd.Series) -> None:
    cur = pd.to_numeric(current, errors="coerce").to_numpy(np.float64)
    cur = cur[np.isfinite(cur)]
    keep = np.isfinite(values) & (counts > 0)
    values, counts = values[keep], counts[keep]
    if values.size == 0 and cur.size == 0:
        _no_data(ax, "no values on either side")
        return
    # Bins span the central TAIL_QUANTILE..1-TAIL_QUANTILE of both sides, not min..max: credit
    # amounts have far tails that would squeeze everything into one bar. Values beyond are
    # clipped into the edge bins, so each side's total mass (and density) stays honest.
    spans = []
    if values.size:
        cum = np.cumsum(counts) / counts.sum()
        q = np.searchsorted(cum, [TAIL_QUANTILE, 1 - TAIL_QUANTILE], side="left")
        spans.append(values[np.minimum(q, values.size - 1)])
    if cur.size:
        spans.append(np.quantile(cur, [TAIL_QUANTILE, 1 - TAIL_QUANTILE]))
    lo = min(float(s[0]) for s in spans)
    hi = max(float(s[1]) for s in spans)
    if lo == hi:  # a constant feature: give the single bin a width
        lo, hi = lo - 0.5, hi + 0.5
    clipped = bool(
        (values.size and (values.min() < lo or values.max() > hi))
        or (cur.size and (cur.min() < lo or cur.max() > hi))
    )
    values, cur = np.clip(values, lo, hi), np.clip(cur, lo, hi)
    if clipped:
        ax.set_xlabel(
            f"tails beyond the {TAIL_QUANTILE:.1%} quantiles folded into the edge bins",
            fontsize=8,
            color="gray",
        )
    bins = np.linspace(lo, hi, N_BINS + 1)
    # Each side is one filled step outline over its precomputed densities (`ax.stairs`), not
    # `ax.hist`'s 50 bar patches: the same bars (np.histogram with density=True is what
    # `ax.hist` computes), drawn at a fraction of the cost of 100 patches per panel.
    if values.size:
        ax.stairs(
            density_histogram(values, bins, counts),
            bins,
            fill=True,
            alpha=0.6,
            color=REFERENCE_COLOR,
            label="reference (train)",
        )
    if cur.size:
        ax.stairs(
            density_histogram(cur, bins),
            bins,
            fill=True,
            alpha=0.6,
            color=PRODUCTION_COLOR,
            label=f"production (n={cur.size:,})",
        )
    else:
        ax.text(0.5, 0.9, "no production values", ha="center", transform=ax.transAxes, color="gray")
    ax.legend(fontsize=8)


def density_histogram(
    values: np.ndarray, bins: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """The bar heights of a density histogram over `bins` (each side of a distribution panel):
    what `Axes.hist(values, bins, weights=weights, density=True)` draws.

    Integer weights are summed as int64: numpy sums them in their own dtype, and a stored
    profile keeps its counts in the narrowest unsigned type (uint8 for a continuous column), in
    which a bin of 300 rows would wrap around to 44."""
    if weights is not None:
        weights = np.asarray(weights)
        weights = weights.astype(np.int64 if weights.dtype.kind in "iub" else np.float64)
    heights, _ = np.histogram(values, bins=bins, weights=weights, density=True)
    return heights


def _categorical_panel(ax: Any, values: np.ndarray, counts: np.ndarray, current: pd.Series) -> None:
    ref = pd.Series(counts, index=[str(v) for v in values], dtype=float)
    ref = ref.groupby(level=0).sum()
    cur = (
        current.dropna()
        .map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
        .value_counts()
    )
    cats = list(ref.index) + [c for c in cur.index if c not in ref.index]
    if not cats:
        _no_data(ax, "no values on either side")
        return
    ref_share = (ref.reindex(cats, fill_value=0) / max(ref.sum(), 1)).to_numpy()
    cur_share = (cur.reindex(cats, fill_value=0) / max(cur.sum(), 1)).to_numpy()
    x = np.arange(len(cats))
    ax.bar(
        x - 0.2, ref_share, width=0.4, color=REFERENCE_COLOR, alpha=0.8, label="reference (train)"
    )
    ax.bar(
        x + 0.2,
        cur_share,
        width=0.4,
        color=PRODUCTION_COLOR,
        alpha=0.8,
        label=f"production (n={int(cur.sum()):,})",
    )
    ax.set_xticks(x)
    ax.set_xticklabels([_short(c, 12) for c in cats], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share")
    ax.legend(fontsize=8)


# -- notebook section 7: operational panel --------------------------------------------------
def plot_operational(meta: pd.DataFrame, threshold: float | None, path: Path | str) -> Path:
    """1x3 panel of a window's predictions: inference latency over time with its p95 line,
    score distribution by decision (APPROVED green, REFUSED red) with the decision threshold,
    and the split of decisions.

    `meta` has columns `created_at`, `inference_time_ms`, `probability`, `decision`."""
    title = "Operational metrics"
    if meta is None or len(meta) == 0:
        return _no_data_figure(path, title, "no predictions in this window")
    missing = [
        c
        for c in ("created_at", "inference_time_ms", "probability", "decision")
        if c not in meta.columns
    ]
    if missing:
        raise ValueError(f"operational frame lacks columns {missing}")

    fig = _figure(16, 4.5)
    ax_lat, ax_score, ax_pie = fig.subplots(1, 3)

    # Latency over time. Times shown in UTC, as naive datetimes: matplotlib's date axis and
    # pandas' timezone-aware values do not always agree.
    when = pd.to_datetime(meta["created_at"], utc=True).dt.tz_convert(None)
    latency = pd.to_numeric(meta["inference_time_ms"], errors="coerce")
    order = np.argsort(when.to_numpy(), kind="stable")
    when, latency = when.iloc[order], latency.iloc[order]
    ok = latency.notna() & when.notna()
    ax_lat.set_title("Inference latency (ms)", fontweight="bold")
    if ok.any():
        import matplotlib.dates as mdates

        ax_lat.plot(
            when[ok].to_numpy(), latency[ok].to_numpy(), alpha=0.5, linewidth=0.5, color=NAVY
        )
        p95 = float(latency[ok].quantile(0.95))
        ax_lat.axhline(p95, color="red", linestyle="--", label=f"p95 = {p95:.1f} ms")
        ax_lat.set_ylabel("ms")
        ax_lat.set_xlabel("time (UTC)")
        first, last = when[ok].min(), when[ok].max()
        if last - first < pd.Timedelta(milliseconds=1):
            # One request can log a whole batch at one instant: a zero-width date axis has no
            # tick interval (matplotlib warns), so show a second around it.
            ax_lat.set_xlim(
                first - pd.Timedelta(milliseconds=500), last + pd.Timedelta(milliseconds=500)
            )
        locator = mdates.AutoDateLocator(maxticks=6)
        ax_lat.xaxis.set_major_locator(locator)
        ax_lat.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax_lat.legend(fontsize=9)
    else:
        _no_data(ax_lat, "no latency recorded")

    # Scores by decision.
    proba = pd.to_numeric(meta["probability"], errors="coerce")
    decision = meta["decision"].astype(str).str.upper()
    ax_score.set_title("Score distribution", fontweight="bold")
    if proba.notna().any():
        bins = np.linspace(0.0, 1.0, 31)
        for label in sorted(set(decision[proba.notna()])):
            scores = proba[(decision == label) & proba.notna()].to_numpy()
            ax_score.hist(
                scores,
                bins=bins,
                alpha=0.7,
                label=f"{label} ({scores.size:,})",
                color=DECISION_COLORS.get(label, "gray"),
            )
        t = _finite(threshold)
        if t is not None:
            ax_score.axvline(t, color="black", linestyle="--", label=f"threshold ({t:.3f})")
        ax_score.set_xlabel("probability of default")
        ax_score.set_ylabel("predictions")
        ax_score.legend(fontsize=9)
    else:
        _no_data(ax_score, "no scores")

    # Decision split; colours follow the label, not the order of the counts.
    counts = decision.value_counts()
    ax_pie.set_title("Decisions", fontweight="bold")
    ax_pie.pie(
        counts.to_numpy(),
        labels=list(counts.index),
        autopct="%1.1f%%",
        colors=[DECISION_COLORS.get(d, "gray") for d in counts.index],
    )
    ax_pie.set_aspect("equal")
    fig.suptitle(f"{title}: {len(meta):,} predictions", fontsize=12, fontweight="bold")
    fig.tight_layout()
    return _save(fig, path)


def plot_reliability(calibration: pd.DataFrame, path: Path | str, subtitle: str = "") -> Path:
    """Reliability diagram of a cohort: each score band's observed default rate (with its
    Jeffreys interval) against its mean predicted PD, on the diagonal when calibrated; bands
    whose interval misses the diagonal in red. `calibration` has the columns of
    `stats.performance.CALIBRATION_COLUMNS`."""
    title = "Calibration by score band"
    rows = calibration[calibration["n"] > 0] if len(calibration) else calibration
    if len(rows) == 0:
        return _no_data_figure(path, title, "no outcome observed yet for this cohort")
    fig = _figure(6.5, 5.5)
    ax = fig.add_subplot()
    x = rows["mean_pd"].to_numpy(np.float64)
    y = rows["observed_rate"].to_numpy(np.float64)
    err = np.vstack([y - rows["jeffreys_low"].to_numpy(), rows["jeffreys_high"].to_numpy() - y])
    ok = rows["calibrated"].astype(bool).to_numpy()
    top = float(np.nanmax(np.concatenate([x, rows["jeffreys_high"].to_numpy()]))) * 1.05
    ax.plot([0, top], [0, top], color="gray", linestyle="--", linewidth=1, label="calibrated")
    for mask, color, label in ((ok, GREEN, "within interval"), (~ok, RED, "outside interval")):
        if mask.any():
            ax.errorbar(
                x[mask], y[mask], yerr=err[:, mask], fmt="o", color=color, capsize=3, label=label
            )
    for xi, yi, n in zip(x, y, rows["n"].to_numpy(), strict=True):
        ax.annotate(f"{n:,}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("mean predicted PD of the band")
    ax.set_ylabel("observed default rate (95% Jeffreys interval)")
    ax.set_title(f"{title}{': ' + subtitle if subtitle else ''}", fontweight="bold", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


# -- drift across windows -------------------------------------------------------------------
def plot_drift_timeline(
    reports: pd.DataFrame,
    path: Path | str,
    *,
    warning_pct: float = DEFAULT_WARNING_PCT,
    alert_pct: float = DEFAULT_ALERT_PCT,
) -> Path:
    """Drifted-feature percentage of each daily window, coloured by status, over the WARNING
    (`warning_pct`..`alert_pct`) and ALERT (above `alert_pct`) bands. Windows without data
    (status NO_DATA or no percentage) are grey bands, not points at 0, and break the line.

    `reports` has columns `report_date`, `drift_percentage`, `status`, and optionally
    `weighted_drift_percentage` (drawn dashed)."""
    title = "Drifted features per window"
    if reports is None or len(reports) == 0:
        return _no_data_figure(path, title, "no drift report yet")
    missing = [c for c in ("report_date", "drift_percentage", "status") if c not in reports.columns]
    if missing:
        raise ValueError(f"drift reports frame lacks columns {missing}")

    days = pd.to_datetime(reports["report_date"])
    if days.dt.tz is not None:
        days = days.dt.tz_convert("UTC").dt.tz_localize(None)
    frame = reports.assign(
        _day=days,
        _pct=pd.to_numeric(reports["drift_percentage"], errors="coerce"),
        _status=reports["status"].astype(str).str.upper(),
    ).sort_values("_day", kind="stable")
    no_data = (frame["_status"] == NO_DATA_STATUS) | frame["_pct"].isna()
    pct = frame["_pct"].where(~no_data)  # NaN breaks the line instead of drawing a fake 0

    fig = _figure(12, 4.5)
    ax = fig.add_subplot()
    days = frame["_day"].to_numpy()
    top = max(alert_pct * 1.5, float(np.nanmax(pct.to_numpy())) * 1.15 if pct.notna().any() else 0)
    top = min(max(top, 1.0), 100.0)
    ax.axhspan(
        warning_pct,
        alert_pct,
        color=ORANGE,
        alpha=0.12,
        label=f"WARNING ({warning_pct:g}-{alert_pct:g}%)",
    )
    ax.axhspan(
        alert_pct, max(top, alert_pct), color=RED, alpha=0.12, label=f"ALERT (> {alert_pct:g}%)"
    )
    ax.plot(days, pct.to_numpy(), color=NAVY, linewidth=1.2, zorder=2)
    if "weighted_drift_percentage" in frame.columns:
        weighted = pd.to_numeric(frame["weighted_drift_percentage"], errors="coerce").where(
            ~no_data
        )
        if weighted.notna().any():
            ax.plot(
                days,
                weighted.to_numpy(),
                color=NAVY,
                linestyle="--",
                linewidth=1,
                alpha=0.7,
                label="importance-weighted %",
                zorder=2,
            )
    for status, color in STATUS_COLORS.items():
        sel = (frame["_status"] == status) & ~no_data
        if sel.any():
            ax.scatter(
                frame.loc[sel, "_day"].to_numpy(),
                pct[sel].to_numpy(),
                color=color,
                s=36,
                zorder=3,
                label=status,
            )
    other = ~no_data & ~frame["_status"].isin(list(STATUS_COLORS))
    if other.any():
        ax.scatter(
            frame.loc[other, "_day"].to_numpy(),
            pct[other].to_numpy(),
            color="gray",
            s=36,
            zorder=3,
            label="other status",
        )
    if no_data.any():
        half_day = np.timedelta64(12, "h")
        for i, day in enumerate(frame.loc[no_data, "_day"].to_numpy()):
            ax.axvspan(
                day - half_day,
                day + half_day,
                color="gray",
                alpha=0.25,
                hatch="//",
                linewidth=0,
                label="no data" if i == 0 else None,
            )
    ax.set_ylim(0, top)
    ax.set_ylabel("drifted features (%)")
    if len(frame) == 1:
        # One day: give the axis some width so the point is not on the frame edge.
        ax.set_xlim(days[0] - np.timedelta64(1, "D"), days[0] + np.timedelta64(1, "D"))
    import matplotlib.dates as mdates

    # Windows are days: never tick hours, even when only a day or two is shown.
    span_days = (days.max() - days.min()) / np.timedelta64(1, "D")
    locator = mdates.DayLocator() if span_days < 10 else mdates.AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    # Legend under the axes: drift points can sit anywhere inside them.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, ncol=7, frameon=False)
    ax.set_title(title, fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


# -- Dagster UI -----------------------------------------------------------------------------
def figure_markdown(
    path: Path | str, *, title: str | None = None, max_bytes: int = MAX_INLINE_BYTES
) -> str:
    """Markdown showing the PNG at `path`: `![title](data:image/png;base64,...)` with the image
    inlined (for `dagster.MetadataValue.md`), or, when the file is larger than `max_bytes`, a
    plain link to it, so the event log never stores a huge blob."""
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    alt = (title or path.stem).replace("[", "(").replace("]", ")")
    if len(data) > max_bytes:
        return f"[{alt}]({path.resolve().as_uri()}) (PNG of {len(data) // 1024} KB, not inlined)"
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
