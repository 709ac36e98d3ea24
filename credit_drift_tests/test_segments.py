"""Drift inside segments: the per-segment tests against the training rows of the same segment,
the correction across segments x features, TOO_SMALL / NO_REFERENCE segments (pure), the
simulator's segment-only drift, and the `segment_drift` asset on SQLite and PostgreSQL."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from credit_drift.features import FeatureSchema, FeatureSpec
from credit_drift.settings import Settings, SettingsError
from credit_drift.stats.policy import evaluate_window, get_policy
from credit_drift.stats.reference import fit_reference
from credit_drift.stats.segments import (
    MISSING,
    NO_REFERENCE,
    SCORE_BAND,
    TOO_SMALL,
    SegmentError,
    SegmentReferences,
    SegmentSpec,
    band_labels,
    evaluate_segments,
    fit_segment_references,
)

NUMERIC = [f"x{i}" for i in range(10)]
SCHEMA = FeatureSchema(
    (
        *(FeatureSpec(n) for n in NUMERIC),
        FeatureSpec("flag"),
        FeatureSpec("product", "categorical", ("cash", "card")),
    )
)
IMPORTANCE = {n: 1.0 for n in SCHEMA.names}


def _frame(n: int, seed: int, *, flag_share: float = 0.2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({n_: rng.normal(0, 1, n) for n_ in NUMERIC})
    frame["flag"] = (rng.random(n) < flag_share).astype(float)
    frame["product"] = rng.choice(["cash", "card"], n, p=[0.7, 0.3]).astype(object)
    return frame


def _shift_segment(frame: pd.DataFrame, by: float, features=NUMERIC[:6]) -> pd.DataFrame:
    """The flag = 1 rows' first features moved by `by` standard deviations."""
    out = frame.copy()
    rows = out["flag"] == 1
    for name in features:
        out.loc[rows, name] += by
    return out


@pytest.fixture(scope="module")
def references():
    train = _frame(20_000, 0)
    spec = SegmentSpec(("flag", "product", SCORE_BAND), min_rows=100)
    scores = np.random.default_rng(1).beta(2, 12, len(train))
    return (
        fit_reference(train, SCHEMA, IMPORTANCE),
        fit_segment_references(train, SCHEMA, IMPORTANCE, spec, scores),
        spec,
    )


def test_score_bands_cut_the_probability_at_fixed_edges():
    p = np.array([0.0, 0.049, 0.05, 0.1, 0.19, 0.2, 1.0, np.nan])
    assert band_labels(p, (0.05, 0.1, 0.2)).tolist() == [
        "[0, 0.05)",
        "[0, 0.05)",
        "[0.05, 0.1)",
        "[0.1, 0.2)",
        "[0.1, 0.2)",
        "[0.2, 1]",
        "[0.2, 1]",
        MISSING,
    ]


def test_bad_segment_configuration_is_named():
    train = _frame(500, 0)
    with pytest.raises(SegmentError, match="'region'"):
        fit_segment_references(train, SCHEMA, IMPORTANCE, SegmentSpec(("region",)))
    # A continuous feature is not a segment column.
    with pytest.raises(SegmentError, match="'x0' has 500 distinct"):
        fit_segment_references(train, SCHEMA, IMPORTANCE, SegmentSpec(("x0",)))
    with pytest.raises(SegmentError, match="needs the model's probabilities"):
        fit_segment_references(train, SCHEMA, IMPORTANCE, SegmentSpec((SCORE_BAND,)))
    with pytest.raises(SegmentError, match="strictly increasing"):
        SegmentSpec(("flag",), score_band_edges=(0.2, 0.1))
    with pytest.raises(SegmentError, match="twice"):
        SegmentSpec(("flag", "flag"))
    with pytest.raises(SettingsError, match="CREDIT_DRIFT_SCORE_BANDS"):
        Settings.from_env({"CREDIT_DRIFT_SCORE_BANDS": "0.3,0.1"})
    with pytest.raises(SettingsError, match="CREDIT_DRIFT_SEGMENT_MIN_ROWS"):
        Settings.from_env({"CREDIT_DRIFT_SEGMENT_MIN_ROWS": "0"})
    s = Settings.from_env({"CREDIT_DRIFT_SEGMENTS": "flag, score_band"})
    assert s.segments == ("flag", "score_band") and s.score_bands == (0.05, 0.1, 0.2)


def test_each_segment_reference_is_the_training_rows_of_that_segment(references):
    _, refs, spec = references
    train = _frame(20_000, 0)
    cash = fit_reference(train[train["product"] == "cash"], SCHEMA, IMPORTANCE, sample_rows=0)
    assert refs.profiles[("product", "cash")].equals(cash)
    assert refs.profiles[("flag", "1")].n_rows == int((train["flag"] == 1).sum())
    assert sorted(refs.values("flag")) == ["0", "1"]
    # Stored as one blob and restored exactly (each profile checked against its content hash).
    back = SegmentReferences.from_blob(refs.to_blob())
    assert back.columns == refs.columns and back.score_band_edges == refs.score_band_edges
    assert set(back.profiles) == set(refs.profiles)
    assert all(back.profiles[k].equals(refs.profiles[k]) for k in refs.profiles)
    with pytest.raises(SegmentError, match="re-materialize reference_profile"):
        refs.check_covers(SegmentSpec(("product", "x1")))
    with pytest.raises(SegmentError, match="score band edges"):
        refs.check_covers(SegmentSpec((SCORE_BAND,), score_band_edges=(0.1, 0.3)))


def test_a_drift_confined_to_one_segment_is_flagged_there_and_diluted_in_the_aggregate(
    references,
):
    profile, refs, spec = references
    policy = get_policy("default")
    window = _shift_segment(_frame(5_000, 11), 0.5)
    probability = np.random.default_rng(12).beta(2, 12, len(window))
    aggregate = evaluate_window(profile, window, policy)
    segments = evaluate_segments(refs, window, probability, policy, spec)
    table = segments.table.set_index("segment")

    # Aggregate: KS D of a 0.5-sd shift on 20% of the rows is under the 0.1 effect floor.
    assert aggregate.status in ("OK", "WARNING")
    assert table.loc["flag=1", "status"] == "ALERT"  # 6 of 12 features
    assert table.loc["flag=1", "n_drifted"] == 6
    assert set(table.loc["flag=1", "top_drifted"].split(", ")) <= set(NUMERIC[:6])
    assert table.loc["flag=0", "status"] == "OK"
    assert segments.flagged == ["flag=1"] and segments.status == "ALERT"
    assert table.loc["flag=1", "window_share"] == pytest.approx(0.2, abs=0.02)


def test_clean_days_flag_no_segment(references):
    profile, refs, spec = references
    policy = get_policy("default")
    for seed in range(20, 30):
        window = _frame(3_000, seed)
        probability = np.random.default_rng(seed + 100).beta(2, 12, len(window))
        out = evaluate_segments(refs, window, probability, policy, spec)
        assert out.flagged == [], (seed, out.table)
        assert set(out.table["status"]) <= {"OK", TOO_SMALL}


def test_the_correction_runs_over_segments_times_features(references):
    _, refs, spec = references
    policy = get_policy("default")
    window = _shift_segment(_frame(4_000, 5), 0.2)
    out = evaluate_segments(refs, window, np.full(len(window), 0.07), policy, spec)
    tested = [s for s in out.table["segment"] if s in out.per_segment]
    raw = np.concatenate([out.per_segment[s]["p_value"].to_numpy() for s in tested])
    adjusted = np.concatenate([out.per_segment[s]["p_adjusted"].to_numpy() for s in tested])
    ok = ~np.isnan(raw)
    # Within a product segment the product feature is constant: no chi-square there.
    assert len(raw) == 12 * len(tested) and out.n_tests == ok.sum() == len(raw) - 2
    np.testing.assert_allclose(adjusted[ok], false_discovery_control(raw[ok], method="bh"))
    # The verdicts use the p-values corrected over the whole family.
    for s in tested:
        r = out.per_segment[s]
        numeric = r["kind"] == "numeric"
        rule = (r["p_adjusted"] < 0.05) & (r["effect_size"] >= 0.1)
        assert (r.loc[numeric, "drifted"] == rule[numeric]).all(), s
    # Every probability in one band: the other bands have no rows, TOO_SMALL, never OK.
    bands = out.table[out.table["column"] == SCORE_BAND].set_index("value")
    assert bands.loc["[0.05, 0.1)", "status"] == "OK"
    assert (bands.drop(index="[0.05, 0.1)")["status"] == TOO_SMALL).all()
    assert (bands.drop(index="[0.05, 0.1)")["n_rows"] == 0).all()


def test_small_segments_and_unseen_values_are_never_ok(references):
    _, refs, _ = references
    spec = SegmentSpec(("flag", "product"), min_rows=700)
    window = _frame(2_000, 3, flag_share=0.1)
    window.loc[:9, "product"] = "leasing"  # a product the training set never had
    window.loc[10:14, "product"] = None
    out = evaluate_segments(refs, window, None, get_policy("default"), spec)
    table = out.table.set_index("segment")
    assert table.loc["flag=1", "status"] == TOO_SMALL  # ~200 rows < 700
    assert table.loc["product=leasing", "status"] == NO_REFERENCE
    assert table.loc["product=leasing", "n_rows"] == 10
    assert table.loc[f"product={MISSING}", "status"] == NO_REFERENCE
    assert table.loc["flag=0", "status"] == "OK"
    # Every window row is in one segment of each column: nothing silently dropped.
    for column in spec.columns:
        assert table.loc[table["column"] == column, "n_rows"].sum() == len(window)


def test_the_simulator_drifts_only_the_segment():
    from credit_drift.simulator.scenario import BatchSpec, ScenarioError, load_scenario

    frame = pd.DataFrame(
        {
            "AMT_CREDIT": np.linspace(1e5, 2e5, 50),
            "DAYS_BIRTH": np.full(50, -12_000.0),
            "NAME_INCOME_TYPE_Pensioner": np.r_[np.ones(10), np.zeros(40)],
        }
    )
    spec = BatchSpec("gradual", 0.5, segment={"column": "NAME_INCOME_TYPE_Pensioner", "value": 1})
    out = spec.drift(frame, np.random.default_rng(0))
    seg = frame["NAME_INCOME_TYPE_Pensioner"] == 1
    assert (out.loc[seg, "AMT_CREDIT"] == frame.loc[seg, "AMT_CREDIT"] * 2.0).all()
    assert out.loc[~seg].equals(frame.loc[~seg])
    assert BatchSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ScenarioError, match="'REGION'"):
        BatchSpec("gradual", 0.5, segment={"column": "REGION", "value": 1}).drift(
            frame, np.random.default_rng(0)
        )
    with pytest.raises(ScenarioError, match="segment"):
        BatchSpec("gradual", 0.5, segment={"name": "x"})
    shipped = load_scenario("segment")
    assert {b.segment["column"] for b in shipped.batches if b.segment} == {
        "NAME_INCOME_TYPE_Pensioner"
    }


# -- the asset ------------------------------------------------------------------------------
@pytest.fixture
def segment_days(db_url, model_dir, tmp_path, monkeypatch):
    from credit_drift.defs.resources import resources_from_settings
    from credit_drift_tests.conftest import pipeline_env, replay_batches

    pipeline_env(
        monkeypatch,
        tmp_path,
        db_url,
        model_dir,
        CREDIT_DRIFT_SEGMENTS="NAME_INCOME_TYPE_Pensioner,score_band",
    )
    from credit_drift.simulator.scenario import load_scenario

    # The shipped scenario: 3 clean days, then the pensioners only, gradual 0.2 / 0.3 / 0.5.
    batches = [b.to_dict() for b in load_scenario("segment").batches]
    replay_batches(db_url, model_dir, batches, batch_size=1500)
    return resources_from_settings(Settings.from_env())


def test_segment_drift_asset_flags_the_drifted_segment_only(segment_days, tmp_path):
    from credit_drift.defs.assets import (
        drift_report,
        feature_drift,
        production_window,
        reference_profile,
        segment_drift,
    )

    resources = segment_days
    instance = dg.DagsterInstance.ephemeral()
    ref = dg.materialize([reference_profile], resources=resources, instance=instance)
    assert ref.success
    (fitted,) = ref.get_asset_materialization_events()
    assert "NAME_INCOME_TYPE_Pensioner=1" in fitted.materialization.metadata["segments"].value

    def day(key):
        result = dg.materialize(
            [production_window, feature_drift, segment_drift, drift_report],
            partition_key=key,
            resources=resources,
            instance=instance,
        )
        assert result.success
        metas = {
            e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
        }
        (check,) = [
            c for c in result.get_asset_check_evaluations() if c.check_name == "segments_stable"
        ]
        return metas, check

    clean, clean_check = day("2026-11-01")
    assert clean["segment_drift"]["n_segments_flagged"].value == 0
    assert clean_check.passed
    records = [r.data for r in clean["segment_drift"]["segments"].value.records]
    assert {r["segment"] for r in records} >= {
        "NAME_INCOME_TYPE_Pensioner=0",
        "NAME_INCOME_TYPE_Pensioner=1",
    }
    assert all(r["status"] in ("OK", TOO_SMALL) for r in records)

    drifted, check = day("2026-11-06")
    seg = drifted["segment_drift"]
    assert drifted["feature_drift"]["status"].value in ("OK", "WARNING")
    assert seg["flagged_segments"].value[0] == "NAME_INCOME_TYPE_Pensioner=1"
    assert "NAME_INCOME_TYPE_Pensioner=0" not in seg["flagged_segments"].value
    assert not check.passed
    page = (tmp_path / "state" / "reports" / "2026-11-06" / "segments.html").read_text()
    assert "NAME_INCOME_TYPE_Pensioner=1" in page and "correction" in page
    assert seg["report_path"].value.endswith("segments.html")
    # The day's drift report shows the same table, carried to it by the IO manager.
    report = drifted["drift_report"]
    assert report["segment_status"].value == seg["status"].value
    assert report["flagged_segments"].value == seg["flagged_segments"].value
    shown = [r.data for r in report["segments"].value.records]
    assert shown == [r.data for r in seg["segments"].value.records]


def test_segment_drift_needs_a_reference_fitted_with_the_segments(
    sqlite_url, model_dir, tmp_path, monkeypatch
):
    from credit_drift.defs.assets import production_window, reference_profile, segment_drift
    from credit_drift.defs.resources import resources_from_settings
    from credit_drift_tests.conftest import pipeline_env, replay_batches

    pipeline_env(monkeypatch, tmp_path, sqlite_url, model_dir)
    replay_batches(sqlite_url, model_dir, [{"kind": "clean"}], batch_size=200)
    instance = dg.DagsterInstance.ephemeral()
    plain = resources_from_settings(Settings.from_env())
    assert dg.materialize([reference_profile], resources=plain, instance=instance).success

    monkeypatch.setenv("CREDIT_DRIFT_SEGMENTS", "NAME_INCOME_TYPE_Pensioner")
    segmented = resources_from_settings(Settings.from_env())
    with pytest.raises(Exception, match="re-materialize reference_profile"):
        dg.materialize(
            [production_window, segment_drift],
            partition_key="2026-11-01",
            resources=segmented,
            instance=instance,
        )
    monkeypatch.setenv("CREDIT_DRIFT_SEGMENTS", "REGION")
    with pytest.raises(Exception, match="'REGION'"):
        dg.materialize(
            [reference_profile],
            resources=resources_from_settings(Settings.from_env()),
            instance=instance,
        )
