"""The period export of the stability report: two CSV files (one row per day; one row per day
and characteristic) and one self-contained HTML page (no external file, script or font: the
figure is embedded) that a validation team can attach to its file as it is."""

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from credit_drift.stats.stability import PSI_MODERATE, PSI_SIGNIFICANT

#: Characteristics listed in the HTML page's table of the period's largest CSI.
TOP_CHARACTERISTICS = 25


@dataclass(frozen=True)
class StabilityExport:
    daily_csv: Path
    csi_csv: Path
    html: Path


def _figure_png(daily: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = pd.to_datetime(daily["day"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    top.plot(days, daily["score_psi"], marker="o", color="#1f4e79", label="score PSI")
    top.plot(
        days,
        daily["max_shifted_csi"],
        marker=".",
        color="#888888",
        label="largest CSI beyond noise",
    )
    top.axhline(PSI_MODERATE, color="#e69f00", linestyle="--", linewidth=1, label="0.10")
    top.axhline(PSI_SIGNIFICANT, color="#b71c1c", linestyle="--", linewidth=1, label="0.25")
    top.set_ylabel("PSI / CSI")
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(days, daily["approval_rate"], marker="o", color="#2e7d32", label="approval rate")
    bottom.plot(
        days,
        daily["development_approval_rate"],
        linestyle=":",
        color="#2e7d32",
        label="development sample at the same threshold",
    )
    bottom.set_ylabel("approval rate")
    bottom.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.4g}")


def write_stability_export(
    daily: pd.DataFrame,
    csi: pd.DataFrame,
    out_dir: Path,
    first: dt.date,
    last: dt.date,
    *,
    profile_version: str,
    model_version: str | None,
) -> StabilityExport:
    """Write `stability_<first>_<last>.csv`, `..._csi.csv` and `....html` into `out_dir`; each
    file is written whole to a temporary name, then renamed (never half a report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"stability_{first.isoformat()}_{last.isoformat()}"
    paths = StabilityExport(
        out_dir / f"{stem}.csv", out_dir / f"{stem}_csi.csv", out_dir / f"{stem}.html"
    )
    worst = (
        csi.dropna(subset=["csi"])
        .sort_values("csi", ascending=False, kind="stable")
        .drop_duplicates("feature")
        .head(TOP_CHARACTERISTICS)
    )
    image = base64.b64encode(_figure_png(daily)).decode("ascii") if len(daily) else ""
    missing = daily.loc[daily["drift_results"] != "computed", "day"].tolist()
    e = html.escape
    missing_note = (
        "<p><strong>Days without drift results (materialize them first):</strong> "
        f"{e(', '.join(missing))}</p>"
        if missing
        else ""
    )
    figure = (
        '<img alt="score PSI, largest CSI and approval rate by day" '
        f'src="data:image/png;base64,{image}">'
        if image
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Stability report {e(first.isoformat())} to {e(last.isoformat())}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>Stability report, {e(first.isoformat())} to {e(last.isoformat())}</h1>
<p>Reference profile {e(profile_version)}, model {e(str(model_version))}. PSI of the score and
CSI of each characteristic on the development sample's fixed bins (its deciles for a numeric
characteristic, its categories for a categorical one). Bands: below {PSI_MODERATE:.2f} stable,
{PSI_MODERATE:.2f}-{PSI_SIGNIFICANT:.2f} moderate shift, {PSI_SIGNIFICANT:.2f} and above
significant shift. <em>expected_if_stable</em> is the PSI sampling noise alone gives at the
day's size (large-sample mean; more when a small day leaves a bin empty). A shift is called
real (<em>beyond_noise</em>) when the characteristic's own exact test (KS, or chi-square for a
categorical one; <em>test_p_adjusted</em>, adjusted for the number of characteristics as the
drift policy does) is below 0.05; the score's PSI is read with the score's KS test. The
<em>n_csi_moderate</em> / <em>n_csi_significant</em> counts are of such real shifts;
<em>n_csi_within_noise</em> counts the characteristics whose band says moderate or significant
but whose test does not.</p>
{missing_note}
{figure}
<h2>By day</h2>
{_table(daily)}
<h2>Characteristics with the largest CSI of the period</h2>
{_table(worst)}
</body></html>
"""
    for path, write in (
        (paths.daily_csv, lambda p: daily.to_csv(p, index=False)),
        (paths.csi_csv, lambda p: csi.to_csv(p, index=False)),
        (paths.html, lambda p: p.write_text(page, encoding="utf-8")),
    ):
        temporary = path.with_name(path.name + ".tmp")
        write(temporary)
        temporary.replace(path)
    return paths
