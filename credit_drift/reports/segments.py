"""The day's per-segment drift table as one self-contained HTML page beside the day's other
reports (`reports/<day>/segments.html`), written whole then renamed."""

import html
from pathlib import Path

import pandas as pd

from credit_drift.reports.stability import _table

_COLORS = {
    "ALERT": "#f8d0d0",
    "WARNING": "#fbe8c0",
    "TOO_SMALL": "#e4e4e4",
    "NO_REFERENCE": "#e4e4e4",
}


def write_segment_report(
    table: pd.DataFrame,
    path: Path,
    *,
    day: str,
    status: str,
    n_tests: int,
    policy_name: str,
    min_rows: int,
) -> Path:
    """Write the segment table of `day` to `path` (an HTML page) and return the path."""
    e = html.escape
    rows = _table(table)
    for name, color in _COLORS.items():
        rows = rows.replace(f"<td>{name}</td>", f'<td style="background:{color}">{name}</td>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift inside segments, {e(day)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>Drift inside segments, {e(day)}: {e(status)}</h1>
<p>Each segment of the day is tested against the training rows of the same segment, feature by
feature, under the {e(policy_name)} policy; the correction for multiple tests is applied once
over all {n_tests} tests of the day's segments and features. A segment's status comes from its
own drifted share. A segment with fewer than {min_rows} rows in the day or in the training set is
TOO_SMALL (not tested, not OK); a value the training set never had is NO_REFERENCE.</p>
{rows}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path
