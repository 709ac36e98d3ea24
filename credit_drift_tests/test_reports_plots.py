"""The notebook's figures as PNG files: typical inputs, empty inputs, NaN statistics."""

import base64
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_drift.reports import plots
from credit_drift.reports.plots import (
    figure_markdown,
    plot_drift_timeline,
    plot_feature_distributions,
    plot_ks_top_features,
    plot_operational,
)

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data.startswith(PNG), f"{path} is not a PNG"
    assert 1_000 < len(data) < plots.MAX_INLINE_BYTES, f"{path}: {len(data)} bytes"
    # Atomic write: no temporary file left beside the figure.
    assert not [p for p in Path(path).parent.iterdir() if p.name.endswith(".tmp")]


def pixels_near(path: Path, hex_color: str, tol: float = 0.06, alpha: float = 1.0) -> int:
    """How many pixels of the PNG have (about) this colour, drawn with `alpha` over white."""
    import matplotlib.image

    image = matplotlib.image.imread(str(path))[..., :3]
    rgb = np.array([int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = alpha * rgb + (1 - alpha)
    return int((np.abs(image - rgb).max(axis=-1) < tol).sum())


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def results(rng) -> pd.DataFrame:
    p = 40
    statistic = rng.uniform(0.0, 0.4, p)
    statistic[[3, 9]] = np.nan
    return pd.DataFrame(
        {
            "feature": [f"FEATURE_{i:03d}_WITH_A_LONG_NAME_FROM_HOME_CREDIT" for i in range(p)],
            "kind": "numeric",
            "test": "ks",
            "statistic": statistic,
            "p_value": rng.uniform(0, 1, p),
            "drifted": statistic > 0.3,
            "importance": rng.dirichlet(np.ones(p)),
        }
    )


# -- KS bars --------------------------------------------------------------------------------
def test_ks_plot_colours_drifted_features_red(results, tmp_path):
    path = plot_ks_top_features(results, tmp_path / "ks.png")
    assert path == tmp_path / "ks.png"
    assert_png(path)
    red, green = pixels_near(path, plots.RED), pixels_near(path, plots.GREEN)
    assert red > 5_000 and green > 5_000

    calm = results.assign(drifted=False)
    calm_path = plot_ks_top_features(calm, tmp_path / "calm.png")
    assert pixels_near(calm_path, plots.RED) < red / 10  # only the legend patch is red


def test_ks_plot_keeps_only_ks_rows(results, tmp_path):
    chi2 = pd.DataFrame(
        {"feature": ["cat"], "test": ["chi2"], "statistic": [250.0], "drifted": [True]}
    )
    path = plot_ks_top_features(chi2, tmp_path / "chi2_only.png")
    assert_png(path)  # no KS row: the "no data" figure, not a bar at 250


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(columns=["feature", "statistic", "drifted"]),
        pd.DataFrame(
            {"feature": ["a", "b"], "statistic": [np.nan, np.nan], "drifted": [None, None]}
        ),
    ],
    ids=["empty", "all-nan"],
)
def test_ks_plot_without_statistics_draws_a_no_data_figure(frame, tmp_path):
    assert_png(plot_ks_top_features(frame, tmp_path / "ks.png"))


# -- distributions --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_columns(rng) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    out = {}
    for i in range(5):
        values = np.round(rng.lognormal(i * 0.2, 0.5, 50_000), 3)
        u, c = np.unique(values, return_counts=True)
        out[f"f{i}"] = (u, c, 100 * i)
    out["grade"] = (np.array(["A", "B", "C"]), np.array([25_000, 15_000, 10_000]), 0)
    return out


def test_distribution_grid_with_numeric_categorical_and_missing_inputs(
    reference_columns, rng, tmp_path
):
    n = 2_000
    current = pd.DataFrame({f"f{i}": np.round(rng.lognormal(0.3, 0.5, n), 3) for i in range(5)})
    current["f1"] = np.nan  # a feature with no production value at all
    current["grade"] = np.array(rng.choice(["A", "B", "D", None], n), dtype=object)
    features = ["f0", "f1", "grade", "f2", "not_in_reference", "f3"]
    ks = {"f0": 0.21, "f1": np.nan, "grade": 0.12, "f2": 0.05}
    path = plot_feature_distributions(reference_columns, current, features, ks, tmp_path / "d.png")
    assert_png(path)
    # Reference histograms (alpha 0.6 over white) were drawn, not only "no data" panels.
    assert pixels_near(path, plots.REFERENCE_COLOR, alpha=0.6) > 500


def test_distribution_grid_hides_unused_panels_and_handles_constants(tmp_path):
    reference = {"const": (np.array([1.0]), np.array([1_000]), 0)}
    current = pd.DataFrame({"const": np.ones(50)})
    path = plot_feature_distributions(
        reference, current, ["const"], {"const": 0.0}, tmp_path / "c.png"
    )
    assert_png(path)


def test_distribution_grid_of_an_empty_window(reference_columns, tmp_path):
    empty = pd.DataFrame({"f0": pd.Series(dtype=float)})
    assert_png(plot_feature_distributions(reference_columns, empty, ["f0"], {}, tmp_path / "e.png"))
    current = pd.DataFrame({"f0": [1.0, 2.0]})
    assert_png(plot_feature_distributions(reference_columns, current, [], {}, tmp_path / "n.png"))


def _drawn_panels(monkeypatch, draw) -> list[dict]:
    """Run `draw` and return, for each visible axes of the figure it saves, its title, limits
    and the (heights, edges) of every filled step outline, as they are just before saving."""
    from matplotlib.patches import StepPatch

    seen: list[dict] = []
    save = plots._save

    def capture(fig, path):
        for ax in fig.axes:
            if not ax.get_visible():
                continue
            steps = [p.get_data() for p in ax.patches if isinstance(p, StepPatch)]
            seen.append(
                {
                    "title": ax.get_title(),
                    "xlim": ax.get_xlim(),
                    "ylim": ax.get_ylim(),
                    "steps": [(np.asarray(s.values), np.asarray(s.edges)) for s in steps],
                    "labels": ax.get_legend_handles_labels()[1],
                }
            )
        return save(fig, path)

    with monkeypatch.context() as patch:
        patch.setattr(plots, "_save", capture)
        draw()
    return seen


def test_distribution_panels_plot_the_same_bars_as_a_density_histogram(
    reference_columns, rng, monkeypatch, tmp_path
):
    # Each side of a numeric panel is one filled step outline (not 50 bar patches); its heights
    # must be exactly the bars `Axes.hist(..., density=True)` drew before, on the same bins.
    from matplotlib.figure import Figure

    current = pd.DataFrame({"f0": np.round(rng.lognormal(0.3, 0.5, 3_000), 3)})
    panels = _drawn_panels(
        monkeypatch,
        lambda: plot_feature_distributions(
            reference_columns, current, ["f0"], {"f0": 0.2}, tmp_path / "d.png"
        ),
    )
    (panel,) = panels
    (ref_heights, edges), (cur_heights, cur_edges) = panel["steps"]
    assert len(edges) == plots.N_BINS + 1 and np.array_equal(edges, cur_edges)
    assert panel["labels"] == ["reference (train)", "production (n=3,000)"]

    values, counts, _ = reference_columns["f0"]
    ref = np.clip(values.astype(np.float64), edges[0], edges[-1])
    cur = np.clip(current["f0"].to_numpy(), edges[0], edges[-1])
    ax = Figure().add_subplot()
    bars_ref = ax.hist(ref, bins=edges, weights=counts, density=True)[0]
    bars_cur = ax.hist(cur, bins=edges, density=True)[0]
    assert np.array_equal(ref_heights, bars_ref) and np.array_equal(cur_heights, bars_cur)
    # Densities: each side's bars cover an area of 1, tails folded in.
    width = np.diff(edges)
    assert (ref_heights * width).sum() == pytest.approx(1.0)
    assert (cur_heights * width).sum() == pytest.approx(1.0)


def test_reference_counts_stored_as_uint8_give_the_true_histogram(monkeypatch, tmp_path):
    # A stored profile keeps a continuous column's counts (all 1) as uint8; numpy sums weights
    # in their dtype, so 1,000 rows in a bin came out as 232 (1,000 mod 256) before.
    from credit_drift.stats.reference import NumericReference

    column = np.random.default_rng(3).normal(size=20_000)
    ref = NumericReference.from_values(column)
    assert ref.counts.dtype == np.uint8
    summaries = {"x": (ref.values, ref.counts, 0)}
    current = pd.DataFrame({"x": column[:500]})
    (panel,) = _drawn_panels(
        monkeypatch,
        lambda: plot_feature_distributions(summaries, current, ["x"], {}, tmp_path / "u8.png"),
    )
    (heights, edges), _ = panel["steps"]
    expected, _ = np.histogram(np.clip(column, edges[0], edges[-1]), bins=edges, density=True)
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    assert (heights * np.diff(edges)).sum() == pytest.approx(1.0)


def test_distribution_figure_looks_as_it_did_with_bar_patches(
    reference_columns, rng, monkeypatch, tmp_path
):
    # The same figure drawn with the former bar patches (each step outline replaced by the bars
    # of the same heights) has the same axes limits and the same pixels.
    from matplotlib.axes import Axes

    current = pd.DataFrame({f"f{i}": np.round(rng.lognormal(0.3, 0.5, 2_000), 3) for i in range(5)})
    current["grade"] = np.array(rng.choice(["A", "B", "D", None], 2_000), dtype=object)
    features = ["f0", "f1", "grade", "f2", "f3", "f4"]

    def draw(path):
        return _drawn_panels(
            monkeypatch,
            lambda: plot_feature_distributions(reference_columns, current, features, {}, path),
        )

    steps = draw(tmp_path / "steps.png")

    def as_bars(ax, values, edges, *, fill, **kwargs):
        assert fill
        return ax.bar(edges[:-1], values, width=np.diff(edges), align="edge", **kwargs)

    monkeypatch.setattr(Axes, "stairs", as_bars)
    bars = draw(tmp_path / "bars.png")
    assert [p["title"] for p in steps] == [p["title"] for p in bars]
    for a, b in zip(steps, bars, strict=True):
        assert a["xlim"] == pytest.approx(b["xlim"], rel=1e-12)
        assert a["ylim"] == pytest.approx(b["ylim"], rel=1e-12)
        assert a["labels"] == b["labels"]
    import matplotlib.image

    new = matplotlib.image.imread(str(tmp_path / "steps.png"))
    old = matplotlib.image.imread(str(tmp_path / "bars.png"))
    assert new.shape == old.shape
    # Adjacent bars can leave an antialiased seam that one outline does not: allow a few pixels.
    assert (np.abs(new - old).max(axis=-1) > 0.02).mean() < 1e-3


def test_a_figure_is_drawn_once_and_saved_byte_for_byte_as_before(results, monkeypatch, tmp_path):
    # tight_layout's leftover placeholder engine made savefig draw the figure twice; without it
    # the PNG is the same bytes.
    from matplotlib.figure import Figure

    draws = []
    draw = Figure.draw

    def counting(self, renderer):
        draws.append(self)
        return draw(self, renderer)

    monkeypatch.setattr(Figure, "draw", counting)
    once = plot_ks_top_features(results, tmp_path / "once.png")
    assert len(draws) == 1
    monkeypatch.setattr(plots, "_drop_spent_layout_engine", lambda fig: None)
    twice = plot_ks_top_features(results, tmp_path / "twice.png")
    assert len(draws) == 3
    assert once.read_bytes() == twice.read_bytes()


# -- operational panel ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def meta(rng) -> pd.DataFrame:
    n = 3_000
    start = pd.Timestamp("2026-11-05", tz="UTC")
    frame = pd.DataFrame(
        {
            "created_at": start + pd.to_timedelta(rng.uniform(0, 86_400, n), unit="s"),
            "inference_time_ms": rng.gamma(2.0, 3.0, n),
            "probability": rng.beta(2, 5, n),
        }
    )
    frame["decision"] = np.where(frame["probability"] >= 0.494, "REFUSED", "APPROVED")
    return frame


def test_operational_panel(meta, tmp_path):
    path = plot_operational(meta, 0.494, tmp_path / "ops.png")
    assert_png(path)
    assert pixels_near(path, plots.GREEN) > 1_000
    assert pixels_near(path, plots.RED) > 1_000


def test_operational_panel_with_one_decision_nan_latency_and_no_threshold(meta, tmp_path):
    one = meta.assign(decision="APPROVED", inference_time_ms=np.nan)
    path = plot_operational(one, float("nan"), tmp_path / "ops.png")
    assert_png(path)
    assert pixels_near(path, plots.RED) < 50  # no REFUSED slice, no p95 line, no fake red


def test_operational_panel_of_an_empty_window(meta, tmp_path):
    assert_png(plot_operational(meta.iloc[:0], 0.5, tmp_path / "ops.png"))


def test_operational_panel_names_missing_columns(meta, tmp_path):
    with pytest.raises(ValueError, match="decision"):
        plot_operational(meta.drop(columns="decision"), 0.5, tmp_path / "ops.png")


# -- timeline -------------------------------------------------------------------------------
def test_drift_timeline_with_no_data_days(rng, tmp_path):
    days = pd.date_range("2026-11-01", periods=15, freq="D")
    pct = np.linspace(2, 45, 15)
    status = np.where(pct > 30, "ALERT", np.where(pct >= 10, "WARNING", "OK")).astype(object)
    status[[4, 5]] = "NO_DATA"
    pct[[4, 5]] = np.nan
    reports = pd.DataFrame({"report_date": days.date, "drift_percentage": pct, "status": status})
    path = plot_drift_timeline(reports, tmp_path / "t.png", warning_pct=10, alert_pct=30)
    assert_png(path)
    assert pixels_near(path, plots.STATUS_COLORS["ALERT"]) > 100


@pytest.mark.parametrize(
    "reports",
    [
        pd.DataFrame(columns=["report_date", "drift_percentage", "status"]),
        pd.DataFrame(
            {"report_date": ["2026-11-01"], "drift_percentage": [None], "status": ["NO_DATA"]}
        ),
        pd.DataFrame(
            {"report_date": ["2026-11-01"], "drift_percentage": [12.5], "status": ["WARNING"]}
        ),
    ],
    ids=["empty", "only-no-data", "one-day"],
)
def test_drift_timeline_edge_cases(reports, tmp_path):
    assert_png(plot_drift_timeline(reports, tmp_path / "t.png"))


def test_timeline_bands_default_to_the_configured_thresholds():
    assert (plots.DEFAULT_WARNING_PCT, plots.DEFAULT_ALERT_PCT) == (10.0, 30.0)


# -- markdown for Dagster -------------------------------------------------------------------
def test_figure_markdown_inlines_the_png(results, tmp_path):
    path = plot_ks_top_features(results, tmp_path / "ks_top.png")
    md = figure_markdown(path)
    prefix = "![ks_top](data:image/png;base64,"
    assert md.startswith(prefix) and md.endswith(")")
    assert base64.b64decode(md[len(prefix) : -1]) == path.read_bytes()
    assert figure_markdown(path, title="KS [top]").startswith("![KS (top)](data:image/png;base64,")


def test_figure_markdown_links_instead_of_inlining_a_large_png(results, tmp_path):
    path = plot_ks_top_features(results, tmp_path / "ks.png")
    md = figure_markdown(path, max_bytes=100)
    assert md.startswith("[ks](file://") and "base64" not in md


def test_figure_markdown_rejects_a_non_png(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="not a PNG"):
        figure_markdown(bad)


def test_operational_panel_of_one_instant_warns_about_nothing(meta, tmp_path):
    # One /predict/batch request logs its rows at the same instant: a zero-width date axis.
    import warnings

    instant = meta.assign(created_at=meta["created_at"].iloc[0]).iloc[:200]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's AutoDateLocator UserWarning fails it
        assert_png(plot_operational(instant, 0.494, tmp_path / "ops.png"))
