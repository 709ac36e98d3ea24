"""The drift assets: wiring only. The work is done in `credit_drift.pipeline` (no Dagster there).

Graph: predictions (external table) -> production_window[day] -> feature_drift[day] ->
evidently_report[day] and drift_report[day]; production_window[day] -> operational_metrics[day];
reference_profile (unpartitioned, in the database) is a dependency of every asset that compares
with it, and is loaded once per run by the `reference` resource. Each day's values travel
through the `daily_io_manager`: an asset takes its upstream as a `{day: value}` mapping (one
entry per day of the run: one for a scheduled or automated run, several for a backfill run) and
returns one.
"""

import datetime as dt

import dagster as dg

from credit_drift.defs import metadata as md
from credit_drift.defs.automation import (
    DOWNSTREAM_OF_THE_DAY,
    WHEN_THE_DAY_CLOSES,
    WITH_THE_DAYS_THAT_EXIST,
    while_cohorts_mature,
)
from credit_drift.defs.io_manager import ALLOW_MISSING_DAYS
from credit_drift.defs.partitions import (
    OUTCOME_HORIZON_DAYS,
    daily_backfill_policy,
    daily_partitions,
    day_windows,
    evidence_span,
)
from credit_drift.defs.resources import (
    PredictionDatabaseResource,
    ProjectResource,
    ReferenceProfileResource,
)
from credit_drift.pipeline import attribution as attribution_step
from credit_drift.pipeline import estimated as estimated_step
from credit_drift.pipeline import evidence as evidence_step
from credit_drift.pipeline import evidently as evidently_step
from credit_drift.pipeline import operations, performance, report, stability, window
from credit_drift.pipeline import segments as segments_step
from credit_drift.pipeline.feature_drift import FeatureDriftResult, compute_feature_drift
from credit_drift.pipeline.reference import build_reference_profile
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.results import top_drifted

# No `from __future__ import annotations` here: Dagster checks the context annotation at runtime.

GROUP = "drift"
#: Concurrency pool of the assets that read or write the prediction database: its limit (set
#: in the instance's dagster.yaml, see the README) bounds how many hit it at once.
DATABASE_POOL = "credit_drift_database"
IO = "daily_io_manager"

Windows = dict[str, ProductionWindow]
Drifts = dict[str, FeatureDriftResult]
Segments = dict[str, segments_step.SegmentDriftResult]

predictions = dg.AssetSpec(
    "predictions",
    description="Every prediction of the scoring API with its feature vector (written by "
    "`credit-drift serve` / `credit-drift simulate`, not by Dagster).",
    group_name=GROUP,
    kinds={"sql"},
)


def _all_days(results: dict[str, bool]) -> tuple[bool, str | None]:
    """A check over the run's days: passed when every day passed; the failing days named."""
    failing = [day for day, ok in results.items() if not ok]
    return not failing, (f"failing day(s): {', '.join(failing)}" if failing else None)


def _status_check(
    name: str, statuses: dict[str, str], metadata: dict, summary: str | None = None
) -> dg.AssetCheckResult:
    """A check over the run's days' statuses: passed when every day is OK or NO_DATA, ERROR
    severity when one is ALERT (else WARN); the days' statuses in its metadata, the failing
    days then `summary` in its description."""
    calm, not_calm = _all_days({d: s in ("OK", "NO_DATA") for d, s in statuses.items()})
    return dg.AssetCheckResult(
        check_name=name,
        passed=calm,
        severity=dg.AssetCheckSeverity.ERROR
        if "ALERT" in statuses.values()
        else dg.AssetCheckSeverity.WARN,
        metadata={**md.per_day("status", statuses), **metadata},
        description=summary if calm else ". ".join(t for t in (not_calm, summary) if t),
    )


@dg.asset(group_name=GROUP, kinds={"python", "sql"}, pool=DATABASE_POOL)
def reference_profile(
    context: dg.AssetExecutionContext,
    database: PredictionDatabaseResource,
    project: ProjectResource,
) -> dg.MaterializeResult:
    """Exact per-feature summary of the WHOLE training set (sorted values and counts for numeric
    features, category frequencies, NaN shares, model feature importance, training scores),
    persisted to `training_reference`. Every day is tested against it, never against a re-read
    of the training file."""
    info = build_reference_profile(database.engine(), project.config())
    context.log.info(f"reference profile {info.profile_version} from {info.n_rows} training rows")
    return dg.MaterializeResult(
        metadata={
            "profile_version": info.profile_version,
            "model_version": info.model_version,
            "n_rows": dg.MetadataValue.int(info.n_rows),
            "n_features": dg.MetadataValue.int(info.n_features),
            "top_features_by_importance": md.table(info.top_importance),
            "segments": dg.MetadataValue.json(list(info.segments)),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[predictions],
    group_name=GROUP,
    kinds={"pandas", "sql"},
    io_manager_key=IO,
    pool=DATABASE_POOL,
    automation_condition=WHEN_THE_DAY_CLOSES,
    check_specs=[
        dg.AssetCheckSpec(
            "enough_rows",
            asset="production_window",
            partitions_def=daily_partitions,
            description="WARN when a day has fewer predictions than CREDIT_DRIFT_MIN_WINDOW_ROWS.",
        ),
        dg.AssetCheckSpec(
            "features_match_model",
            asset="production_window",
            partitions_def=daily_partitions,
            description="ERROR when predictions were logged with another feature list than the "
            "model's (the missing and extra features are named).",
        ),
    ],
)
def production_window(
    context: dg.AssetExecutionContext,
    database: PredictionDatabaseResource,
    project: ProjectResource,
):  # a MaterializeResult of Windows: with check specs, Dagster takes no return annotation
    """The predictions logged in [day, day+1) UTC: features aligned to the model's feature list,
    with probability, decision and latency. Read in the packed form (binary COPY on PostgreSQL),
    never row by row through json_normalize."""
    engine = database.engine()
    schema = project.artifacts().schema
    min_rows = project.min_window_rows
    windows: Windows = {}
    for day in day_windows(context):
        w = window.read_production_window(engine, schema, day)
        windows[day.key] = w
        context.add_asset_metadata(
            {
                "n_predictions": dg.MetadataValue.int(w.n_rows),
                "window_start": day.start.isoformat(),
                "window_end": day.end.isoformat(),
                "n_features": dg.MetadataValue.int(w.features.shape[1]),
                **md.floats(read_seconds=w.read_seconds),
            },
            partition_key=day.key,
        )
    enough, why_not = _all_days({d: w.n_rows >= min_rows for d, w in windows.items()})
    same, differs = _all_days(
        {d: not w.missing_features and not w.extra_features for d, w in windows.items()}
    )
    checks = [
        dg.AssetCheckResult(
            check_name="enough_rows",
            passed=enough,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "n_rows": md.by_day({d: w.n_rows for d, w in windows.items()}),
                "min_rows": dg.MetadataValue.int(min_rows),
            },
            description=None if enough else f"{why_not}: too few rows for the tests to mean much",
        ),
        dg.AssetCheckResult(
            check_name="features_match_model",
            passed=same,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "missing_features": dg.MetadataValue.json(
                    sorted({f for w in windows.values() for f in w.missing_features})
                ),
                "extra_features": dg.MetadataValue.json(
                    sorted({f for w in windows.values() for f in w.extra_features})
                ),
            },
            description=differs,
        ),
    ]
    return dg.MaterializeResult(value=windows, check_results=checks)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    group_name=GROUP,
    kinds={"numpy", "sql"},
    io_manager_key=IO,
    pool=DATABASE_POOL,
    automation_condition=DOWNSTREAM_OF_THE_DAY,
)
def feature_drift(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    database: PredictionDatabaseResource,
    reference: ReferenceProfileResource,
    project: ProjectResource,
) -> dg.MaterializeResult[Drifts]:
    """One result per model feature for the day: test (KS for numeric, chi-square for
    categorical), statistic, p-value (BH-adjusted under the default policy), effect size, the
    drift decision and why, NaN shares and unseen categories. Also stored in
    `feature_drift_results` (the day's rows are replaced on re-materialization)."""
    engine, loaded, policy = database.engine(), reference.load(), project.config().policy
    drifts: Drifts = {}
    for day in day_windows(context):
        drift = compute_feature_drift(engine, loaded, production_window[day.key], policy)
        drifts[day.key] = drift
        context.add_asset_metadata(
            {
                "status": drift.status,
                "policy": drift.policy_name,
                "n_predictions": dg.MetadataValue.int(drift.n_rows),
                "n_features_analyzed": dg.MetadataValue.int(drift.n_analyzed),
                "n_features_drifted": dg.MetadataValue.int(drift.n_drifted),
                **md.floats(
                    drift_percentage=drift.drift_percentage,
                    weighted_drift_percentage=drift.weighted_drift_percentage,
                    compute_seconds=drift.seconds,
                ),
                "top_drifted_features": md.table(top_drifted(drift.results, 15)),
            },
            partition_key=day.key,
        )
    return dg.MaterializeResult(value=drifts)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    group_name=GROUP,
    kinds={"html"},
    automation_condition=DOWNSTREAM_OF_THE_DAY,
)
def evidently_report(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    feature_drift: Drifts,
    reference: ReferenceProfileResource,
    project: ProjectResource,
) -> dg.MaterializeResult:
    """Evidently 0.7 data-drift HTML report: the day as CURRENT data, the training reference
    (rebuilt exactly from the stored profile) as REFERENCE data. Columns: the drifted features
    plus the most important ones, capped (project fields evidently_max_columns /
    evidently_all_columns), because Evidently takes minutes on all 419 columns."""
    loaded, config = reference.load(), project.config()
    for day in day_windows(context):
        built = evidently_step.build_evidently(
            loaded, production_window[day.key], feature_drift[day.key], config
        )
        if built is None:
            meta = {"status": "NO_DATA", "report": "no predictions"}
        else:
            meta = {
                "report_path": dg.MetadataValue.path(str(built.path)),
                "report_url": dg.MetadataValue.url(built.path.resolve().as_uri()),
                "n_columns": dg.MetadataValue.int(built.n_columns),
                "evidently_drifted_columns": dg.MetadataValue.int(built.n_drifted_columns),
                **md.floats(evidently_drift_share=built.drift_share, seconds=built.seconds),
            }
        context.add_asset_metadata(meta, partition_key=day.key)
    return dg.MaterializeResult()


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    # Shown when it exists: a run that materializes drift_report without segment_drift (a
    # selection of assets, a day from before segments) gets no segment table, not a failure.
    ins={"segment_drift": dg.AssetIn(input_manager_key=IO, metadata={ALLOW_MISSING_DAYS: True})},
    group_name=GROUP,
    kinds={"sql"},
    pool=DATABASE_POOL,
    automation_condition=DOWNSTREAM_OF_THE_DAY,
    check_specs=[
        dg.AssetCheckSpec(
            "drifted_share",
            asset="drift_report",
            partitions_def=daily_partitions,
            description="WARN on a WARNING day, ERROR on an ALERT day.",
        ),
        dg.AssetCheckSpec(
            "important_features_stable",
            asset="drift_report",
            partitions_def=daily_partitions,
            description="WARN when the importance-weighted drifted share reaches the policy's "
            "share for important features (the WARNING share): a few drifted features the model "
            "leans on (an external score changing formula) can leave the plain share OK.",
        ),
        dg.AssetCheckSpec(
            "joint_distribution_stable",
            asset="drift_report",
            partitions_def=daily_partitions,
            description="WARN when the domain classifier tells the day from the reference "
            "(a broken correlation that no single feature shows).",
        ),
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    feature_drift: Drifts,
    segment_drift: Segments,
    database: PredictionDatabaseResource,
    reference: ReferenceProfileResource,
    project: ProjectResource,
) -> dg.MaterializeResult:
    """The day's row in `drift_reports` (replaced, not duplicated, on re-materialization):
    predictions, features analyzed and drifted, drift percentage (plain and importance-weighted),
    multivariate drift score and the status OK / WARNING / ALERT, or NO_DATA for an empty day.
    An alerting day's alert is written in the same transaction; `drift_alert_sensor` delivers
    it. Also why the score moved: the change in mean log-odds against the reference sample,
    split over the features by the model's own contributions (table and figure). With segment
    columns configured, the day's per-segment table (`segment_drift`) is shown here too."""
    engine, loaded, config = database.engine(), reference.load(), project.config()
    artifacts = project.artifacts()
    reports = {}
    for day in day_windows(context):
        attribution = attribution_step.compute_score_attribution(
            artifacts, loaded, production_window[day.key]
        )
        out = report.write_drift_report(
            engine,
            loaded,
            production_window[day.key],
            feature_drift[day.key],
            config,
            attribution=attribution,
        )
        reports[day.key] = out
        if out.alert_raised:
            context.log.warning(f"DRIFT {out.status} window={day.key}: {out.summary}")
        context.add_asset_metadata(
            {
                "status": out.status,
                "report_date": day.key,
                "n_predictions": dg.MetadataValue.int(out.n_predictions),
                "n_features_analyzed": dg.MetadataValue.int(out.n_features_analyzed),
                "n_features_drifted": dg.MetadataValue.int(out.n_features_drifted),
                **md.floats(
                    drift_percentage=out.drift_percentage,
                    weighted_drift_percentage=out.weighted_drift_percentage,
                    multivariate_auc=out.multivariate_score,
                ),
                "top_drifted_features": md.table(out.top_features),
                **_attribution_metadata(out.attribution),
                **_segment_metadata(segment_drift.get(day.key)),
                **md.figures(out.figures),
            },
            partition_key=day.key,
        )
    return dg.MaterializeResult(check_results=_report_checks(reports))


def _segment_metadata(segments) -> dict[str, dg.MetadataValue]:
    """The day's segments on the drift report's page: status, flagged ones, the table."""
    if segments is None or not segments.configured:
        return {}
    return {
        "segment_status": dg.MetadataValue.text(segments.status),
        "flagged_segments": dg.MetadataValue.json(list(segments.flagged)),
        "segments": md.table(segments.table),
    }


def _attribution_metadata(attribution) -> dict[str, dg.MetadataValue]:
    if attribution is None:
        return {}
    return {
        **md.floats(
            score_mean_log_odds_change=attribution.mean_margin_change,
            score_mean_log_odds_change_se=attribution.mean_margin_change_se,
            score_mean_probability_change=attribution.mean_probability_change,
        ),
        "score_attribution_rows": dg.MetadataValue.int(attribution.n_window),
        "score_attribution": md.table(attribution.top(15)),
    }


def _report_checks(reports: dict[str, report.DriftReportOutcome]) -> list[dg.AssetCheckResult]:
    statuses = {day: r.status for day, r in reports.items()}
    stable, moved = _all_days({d: not r.important_features_moved for d, r in reports.items()})
    joint, joint_moved = _all_days({d: not r.multivariate_drifted for d, r in reports.items()})
    not_run = [d for d, r in reports.items() if r.multivariate_drifted is None]
    summaries = "; ".join(f"{d} {r.status}: {r.summary}" for d, r in reports.items())

    return [
        _status_check(
            "drifted_share",
            statuses,
            md.per_day("drift_percentage", {d: r.drift_percentage for d, r in reports.items()}),
            summaries,
        ),
        dg.AssetCheckResult(
            check_name="important_features_stable",
            passed=stable,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                **md.per_day(
                    "weighted_drift_percentage",
                    {d: r.weighted_drift_percentage for d, r in reports.items()},
                ),
                **md.per_day(
                    "drifted_among_top_10",
                    {d: list(r.important_drifted) for d, r in reports.items()},
                ),
            },
            description=moved,
        ),
        dg.AssetCheckResult(
            check_name="joint_distribution_stable",
            passed=joint,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                **md.per_day(
                    "multivariate_auc", {d: r.multivariate_score for d, r in reports.items()}
                ),
                **md.per_day(
                    "auc_threshold", {d: r.multivariate_threshold for d, r in reports.items()}
                ),
            },
            description=joint_moved
            or (
                f"not run on {', '.join(not_run)} (empty day or fewer rows than "
                "CREDIT_DRIFT_MIN_WINDOW_ROWS)"
                if not_run
                else None
            ),
        ),
    ]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    group_name=GROUP,
    kinds={"python"},
    automation_condition=DOWNSTREAM_OF_THE_DAY,
)
def operational_metrics(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    reference: ReferenceProfileResource,
    project: ProjectResource,
) -> dg.MaterializeResult:
    """Volume, latency mean / p50 / p95, mean probability, refusal rate, score distribution, and
    drift of the model's score itself against the training scores: a shift in decisions is what
    the business feels first."""
    loaded, config = reference.load(), project.config()
    for day in day_windows(context):
        ops = operations.compute_operational_metrics(loaded, production_window[day.key], config)
        meta = {
            "n_predictions": dg.MetadataValue.int(ops.n_predictions),
            **md.floats(**ops.numbers),
        }
        if ops.figure is not None:
            meta.update(md.figures({"operational_figure": ops.figure}))
        context.add_asset_metadata(meta, partition_key=day.key)
    return dg.MaterializeResult()


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    group_name=GROUP,
    kinds={"python"},
    automation_condition=DOWNSTREAM_OF_THE_DAY,
)
def stability_report(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    feature_drift: Drifts,
    reference: ReferenceProfileResource,
) -> dg.MaterializeResult:
    """The stability report a validation team files: PSI of the score and CSI of every
    characteristic on the development sample's fixed bins, against the 0.10 / 0.25 bands and
    against what sampling noise alone gives at the day's size; approval rate against the
    development sample's at the same threshold. `credit-drift stability` exports a period."""
    loaded = reference.load()
    for day in day_windows(context):
        meta = production_window[day.key].meta
        day_report = stability.stability_of_day(
            loaded,
            day,
            meta[["probability", "decision", "threshold"]],
            feature_drift[day.key].results,
        )
        summary = day_report.summary()
        context.add_asset_metadata(
            {
                "n_predictions": dg.MetadataValue.int(day_report.n_predictions),
                "score_band": summary["score_band"],
                "score_interpretation": summary["score_interpretation"],
                "n_csi_moderate": dg.MetadataValue.int(summary["n_csi_moderate"]),
                "n_csi_significant": dg.MetadataValue.int(summary["n_csi_significant"]),
                "n_csi_within_noise": dg.MetadataValue.int(summary["n_csi_within_noise"]),
                **md.floats(
                    score_psi=summary["score_psi"],
                    score_expected_if_stable=summary["score_expected_if_stable"],
                    score_ks_p_value=summary["score_ks_p_value"],
                    approval_rate=summary["approval_rate"],
                    development_approval_rate=summary["development_approval_rate"],
                    max_shifted_csi=summary["max_shifted_csi"],
                ),
                "largest_csi": md.table(
                    day_report.csi.head(15)[
                        [
                            "feature",
                            "csi",
                            "band",
                            "expected_if_stable",
                            "test_p_adjusted",
                            "interpretation",
                        ]
                    ]
                ),
            },
            partition_key=day.key,
        )
    return dg.MaterializeResult()


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    ins={
        "feature_drift": dg.AssetIn(
            partition_mapping=evidence_span, metadata={ALLOW_MISSING_DAYS: True}
        )
    },
    group_name=GROUP,
    kinds={"python"},
    automation_condition=WITH_THE_DAYS_THAT_EXIST,
    check_specs=[
        dg.AssetCheckSpec(
            "evidence_across_days",
            asset="drift_evidence",
            partitions_def=daily_partitions,
            description="WARN when the evidence accumulated over the last days reaches the "
            "WARNING share (ERROR at the ALERT share): a slow drift no single day shows yet.",
        ),
    ],
)
def drift_evidence(
    context: dg.AssetExecutionContext,
    feature_drift: Drifts,
    reference: ReferenceProfileResource,
    project: ProjectResource,
):  # a MaterializeResult: with check specs, Dagster takes no return annotation
    """Evidence across days: per feature, a CUSUM of the daily KS statistics over the last
    stored feature_drift days (CREDIT_DRIFT_EVIDENCE_DAYS, 7 by default), each day counted
    by how far its statistic stands above a clean window's noise plus an allowance; a feature
    is flagged once the sum reaches the threshold, and the share of flagged features gets the
    WARNING / ALERT shares. Sees a drift growing a little every day days before the daily rule
    does. Days never materialized do not count."""
    loaded, settings = reference.load(), project.config().evidence
    results = {}
    for day in day_windows(context):
        span = [
            d for key, d in feature_drift.items() if day.key >= key > _days_before(day, settings)
        ]
        ev = evidence_step.compute_evidence(loaded, span, settings)
        results[day.key] = ev
        if ev.status in ("WARNING", "ALERT"):
            context.log.warning(
                f"DRIFT EVIDENCE {ev.status} window={day.key}: {ev.n_flagged}/{ev.n_tracked} "
                f"features accumulated drift over {len(ev.days)} days"
            )
        context.add_asset_metadata(
            {
                "status": ev.status,
                "n_days": dg.MetadataValue.int(len(ev.days)),
                "days": dg.MetadataValue.json(list(ev.days)),
                "n_features_tracked": dg.MetadataValue.int(ev.n_tracked),
                "n_features_flagged": dg.MetadataValue.int(ev.n_flagged),
                **md.floats(
                    flagged_percentage=None if ev.status == "NO_DATA" else 100.0 * ev.flagged_share
                ),
                "top_accumulated_features": md.table(ev.table.head(15)),
            },
            partition_key=day.key,
        )
    check = _status_check(
        "evidence_across_days",
        {d: r.status for d, r in results.items()},
        md.per_day("flagged_features", {d: r.flagged_features[:20] for d, r in results.items()}),
    )
    return dg.MaterializeResult(check_results=[check])


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    group_name=GROUP,
    kinds={"numpy"},
    automation_condition=DOWNSTREAM_OF_THE_DAY,
    check_specs=[
        dg.AssetCheckSpec(
            "estimated_performance_within_bounds",
            asset="estimated_performance",
            partitions_def=daily_partitions,
            description="WARN when an estimated metric leaves the band that days of the same "
            "size drawn from the hold-out give; ERROR when the estimated AUC is below "
            "CREDIT_DRIFT_MIN_ESTIMATED_AUC.",
        ),
    ],
)
def estimated_performance(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    database: PredictionDatabaseResource,
    project: ProjectResource,
):  # a MaterializeResult: with check specs, Dagster takes no return annotation
    """Label-free performance estimate of the day, the morning after (CBPE: no outcomes
    needed): the logged probabilities calibrated on the model's hold-out (isotonic, checked
    there), the expected confusion matrix, AUC, default rate and business cost, against the
    band (mean +/- 3 std) of day-sized samples of the hold-out and the configured AUC bound.
    It sees what a shift in WHO applies does to performance; it cannot see a change in how
    often the same applicant defaults (concept drift): only realized outcomes show that.
    A day below the bound raises one `estimated_performance` alert in the outbox (once, however
    often it is re-materialized); `drift_alert_sensor` delivers it."""
    artifacts, config = project.artifacts(), project.config()
    cbpe = estimated_step.cbpe_reference(artifacts)
    engine = database.engine()
    results = {}
    for day in day_windows(context):
        out = estimated_step.estimate_day(artifacts, cbpe, production_window[day.key], config)
        results[day.key] = out
        raised = estimated_step.raise_alert(engine, out, config)
        if out.status in ("WARNING", "ALERT"):
            context.log.warning(
                f"ESTIMATED PERFORMANCE {out.status} window={day.key}: {out.summary}"
            )
        context.add_asset_metadata(
            {
                "status": out.status,
                "summary": out.summary,
                "alert_raised": dg.MetadataValue.bool(raised),
                "n_predictions": dg.MetadataValue.int(out.n_predictions),
                "n_other_model_version": dg.MetadataValue.int(out.n_other_model),
                "raw_model_calibrated": dg.MetadataValue.bool(out.calibration.raw_is_calibrated),
                **md.floats(**out.numbers()),
                **(md.figures({"estimated_performance_figure": out.figure}) if out.figure else {}),
            },
            partition_key=day.key,
        )
    check = _status_check(
        "estimated_performance_within_bounds",
        {d: r.status for d, r in results.items()},
        md.per_day(
            "estimated_auc", {d: r.estimate.auc if r.estimate else None for d, r in results.items()}
        ),
        "; ".join(f"{d} {r.status}: {r.summary}" for d, r in results.items()),
    )
    return dg.MaterializeResult(check_results=[check])


outcomes = dg.AssetSpec(
    "outcomes",
    description="Observed outcomes (default or not) linked to predictions by application id "
    "(written by POST /outcomes, `credit-drift outcomes load` and the simulator, not by "
    "Dagster); late_outcomes_sensor watches it.",
    group_name=GROUP,
    kinds={"sql"},
)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[predictions, outcomes, reference_profile],
    group_name=GROUP,
    kinds={"python", "sql"},
    io_manager_key=IO,
    pool=DATABASE_POOL,
    automation_condition=while_cohorts_mature(OUTCOME_HORIZON_DAYS),
)
def realized_performance(
    context: dg.AssetExecutionContext,
    database: PredictionDatabaseResource,
    reference: ReferenceProfileResource,
    project: ProjectResource,
) -> dg.MaterializeResult[dict[str, performance.CohortPerformance]]:
    """How the day's cohort actually performed, from the outcomes observed so far: volume and
    labeled share, status (immature: no outcomes yet / partial / mature after
    CREDIT_DRIFT_OUTCOME_HORIZON_DAYS), observed default rate against the mean predicted PD with
    an exact binomial test, AUC / Gini / KS, Brier score, calibration on the development
    sample's score deciles (table and reliability plot, Jeffreys interval per band) and the
    business cost at the decision threshold against the validation cost. Re-run by
    late_outcomes_sensor when outcomes of the day arrive, and daily while the day matures."""
    engine, config = database.engine(), project.config()
    model_metrics = project.artifacts().metrics
    scores = reference.load().profile.training_scores
    # One moment for the whole run: every day of it is measured with the same outcomes known.
    as_of = dt.datetime.now(dt.UTC)
    values: dict[str, performance.CohortPerformance] = {}
    for day in day_windows(context):
        perf = performance.compute_realized_performance(
            engine,
            day,
            as_of=as_of,
            horizon_days=config.outcome_horizon_days,
            training_scores=scores,
            model_metrics=model_metrics,
            figure_dir=config.day_dir(day.key),
        )
        values[day.key] = perf
        context.add_asset_metadata(_performance_metadata(perf), partition_key=day.key)
    return dg.MaterializeResult(value=values)


def _performance_metadata(perf: performance.CohortPerformance) -> dict[str, dg.MetadataValue]:
    m, summary = perf.metrics, perf.summary()
    meta: dict[str, dg.MetadataValue] = {
        "status": dg.MetadataValue.text(perf.status),
        "message": dg.MetadataValue.text(perf.message),
        "as_of": dg.MetadataValue.text(perf.as_of.isoformat()),
        "matures_at": dg.MetadataValue.text(perf.matures_at.isoformat()),
        "n_predictions": dg.MetadataValue.int(m.n),
        "n_labeled": dg.MetadataValue.int(m.n_labeled),
        "n_defaults": dg.MetadataValue.int(m.n_defaults),
        "n_bands_miscalibrated": dg.MetadataValue.int(m.n_bands_miscalibrated),
        **md.floats(
            labeled_share=summary["labeled_share"],
            observed_default_rate=m.observed_default_rate,
            mean_pd=m.mean_pd,
            binomial_p_value=m.binomial_p_value,
            auc=m.auc,
            gini=m.gini,
            ks_statistic=m.ks_statistic,
            brier=m.brier,
            cost_per_application=m.cost_per_application,
            validation_cost_per_application=m.validation_cost_per_application,
        ),
        "calibration": md.table(m.calibration),
    }
    if m.undefined_reason:
        meta["undefined"] = dg.MetadataValue.text(m.undefined_reason)
    if perf.figure is not None:
        meta.update(md.figures({"reliability_figure": perf.figure}))
    return meta


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=daily_backfill_policy,
    deps=[reference_profile],
    group_name=GROUP,
    kinds={"numpy", "html"},
    io_manager_key=IO,
    automation_condition=DOWNSTREAM_OF_THE_DAY,
    check_specs=[
        dg.AssetCheckSpec(
            "segments_stable",
            asset="segment_drift",
            partitions_def=daily_partitions,
            description="WARN when a segment of the day (CREDIT_DRIFT_SEGMENTS) is at WARNING "
            "(ERROR at ALERT): a drift confined to one product or score band, diluted in the "
            "day's aggregate.",
        ),
    ],
)
def segment_drift(
    context: dg.AssetExecutionContext,
    production_window: Windows,
    reference: ReferenceProfileResource,
    project: ProjectResource,
):  # a MaterializeResult: with check specs, Dagster takes no return annotation
    """Drift inside segments: the day split by each configured segment column
    (CREDIT_DRIFT_SEGMENTS: a categorical feature, a flag, or score_band), every segment's
    features tested against the training rows of the same segment (fitted with the reference
    profile), the policy's correction applied across segments x features; per segment its
    status from its own drifted share, TOO_SMALL under CREDIT_DRIFT_SEGMENT_MIN_ROWS rows on
    either side (never OK). Table in the metadata and in `reports/<day>/segments.html`."""
    loaded, config = reference.load(), project.config()
    results = {}
    for day in day_windows(context):
        out = segments_step.compute_segment_drift(loaded, production_window[day.key], config)
        results[day.key] = out
        if not out.configured:
            meta = {"status": "NO_DATA", "segments": "no segment column configured"}
        else:
            if out.flagged:
                context.log.warning(
                    f"SEGMENT DRIFT {out.status} window={day.key}: {', '.join(out.flagged)}"
                )
            meta = {
                "status": out.status,
                "n_segments": dg.MetadataValue.int(len(out.table)),
                "n_segments_flagged": dg.MetadataValue.int(len(out.flagged)),
                "n_segments_too_small": dg.MetadataValue.int(len(out.too_small)),
                "flagged_segments": dg.MetadataValue.json(list(out.flagged)),
                "n_tests": dg.MetadataValue.int(out.n_tests),
                "segments": md.table(out.table),
                "report_path": dg.MetadataValue.path(str(out.report)),
                **md.floats(compute_seconds=out.seconds),
            }
        context.add_asset_metadata(meta, partition_key=day.key)
    flagged = {d: list(r.flagged) for d, r in results.items()}
    calm, not_calm = _all_days({d: not f for d, f in flagged.items()})
    alert = any(r.status == "ALERT" for r in results.values())
    check = dg.AssetCheckResult(
        check_name="segments_stable",
        passed=calm,
        severity=dg.AssetCheckSeverity.ERROR if alert else dg.AssetCheckSeverity.WARN,
        metadata=md.per_day("flagged_segments", flagged),
        description=not_calm,
    )
    return dg.MaterializeResult(value=results, check_results=[check])


def _days_before(day, settings) -> str:
    """The key of the last day outside `day`'s span."""
    return (day.date - dt.timedelta(days=settings.days)).isoformat()


daily_assets = [
    production_window,
    feature_drift,
    evidently_report,
    drift_report,
    operational_metrics,
    stability_report,
    drift_evidence,
    realized_performance,
    estimated_performance,
    segment_drift,
]
