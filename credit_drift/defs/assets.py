"""Drift assets: wiring only. The work is done by `credit_drift.monitoring` (no Dagster there).

Graph: predictions (external table) -> production_window[day] -> feature_drift[day] ->
evidently_report[day] and drift_report[day]; reference_profile (unpartitioned) feeds every
windowed asset; operational_metrics[day] reads the same window.
"""

import dagster as dg
import pandas as pd

from credit_drift import monitoring
from credit_drift.defs.partitions import daily_partitions, window_for
from credit_drift.defs.resources import CreditDriftResource

# No `from __future__ import annotations` here: Dagster checks the context annotation at runtime.

GROUP = "drift"

predictions = dg.AssetSpec(
    "predictions",
    description="Every prediction of the scoring API with its feature vector (written by "
    "`credit-drift serve` / `credit-drift simulate`, not by Dagster).",
    group_name=GROUP,
    kinds={"sql"},
)


def _table(frame: pd.DataFrame) -> dg.TableMetadataValue:
    """A DataFrame as Dagster table metadata (the UI renders it as a table)."""
    columns = []
    for name, dtype in frame.dtypes.items():
        kind = (
            "float"
            if pd.api.types.is_float_dtype(dtype)
            else "int"
            if pd.api.types.is_integer_dtype(dtype)
            else "bool"
            if pd.api.types.is_bool_dtype(dtype)
            else "string"
        )
        columns.append(dg.TableColumn(str(name), kind))
    records = [
        dg.TableRecord({k: monitoring.plain(v) for k, v in row.items()})
        for row in frame.to_dict(orient="records")
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


@dg.asset(group_name=GROUP, kinds={"python", "sql"})
def reference_profile(
    context: dg.AssetExecutionContext, project: CreditDriftResource
) -> dg.MaterializeResult:
    """Exact per-feature summary of the WHOLE training set (sorted values and counts for numeric
    features, category frequencies, NaN shares, model feature importance, training scores),
    persisted to `training_reference`. Every window is tested against it, never against a
    re-read of the training file."""
    info = monitoring.build_reference_profile(project.engine(), project.settings())
    context.log.info(f"reference profile {info.profile_version} from {info.n_rows} training rows")
    return dg.MaterializeResult(
        metadata={
            "profile_version": info.profile_version,
            "model_version": info.model_version,
            "n_rows": dg.MetadataValue.int(info.n_rows),
            "n_features": dg.MetadataValue.int(info.n_features),
            "top_features_by_importance": _table(info.top_importance),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=[predictions],
    group_name=GROUP,
    kinds={"pandas", "sql"},
    check_specs=[
        dg.AssetCheckSpec("enough_rows", asset="production_window"),
        dg.AssetCheckSpec("features_match_model", asset="production_window"),
    ],
)
def production_window(
    context: dg.AssetExecutionContext, project: CreditDriftResource
) -> dg.MaterializeResult:
    """The predictions logged in [day, day+1) UTC: features aligned to the model's feature list,
    with probability, decision and latency. Read in the packed form (binary COPY on PostgreSQL),
    never row by row through json_normalize."""
    start, end = window_for(context)
    settings = project.settings()
    window = monitoring.read_window(project.engine(), settings, start, end)
    monitoring.save_window(settings, context.partition_key, window)
    n = len(window.meta)
    enough = n >= settings.min_window_rows
    checks = [
        dg.AssetCheckResult(
            check_name="enough_rows",
            passed=enough,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "n_rows": dg.MetadataValue.int(n),
                "min_rows": dg.MetadataValue.int(settings.min_window_rows),
            },
            description=None
            if enough
            else f"{n} rows < {settings.min_window_rows}: too few for the tests to mean much",
        ),
        dg.AssetCheckResult(
            check_name="features_match_model",
            passed=not window.missing_features and not window.extra_features,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "missing_features": dg.MetadataValue.json(window.missing_features),
                "extra_features": dg.MetadataValue.json(window.extra_features),
            },
        ),
    ]
    return dg.MaterializeResult(
        metadata={
            "n_predictions": dg.MetadataValue.int(n),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "n_features": dg.MetadataValue.int(window.features.shape[1]),
            "read_seconds": dg.MetadataValue.float(window.read_seconds),
        },
        check_results=checks,
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=[production_window, reference_profile],
    group_name=GROUP,
    kinds={"numpy", "sql"},
)
def feature_drift(
    context: dg.AssetExecutionContext, project: CreditDriftResource
) -> dg.MaterializeResult:
    """One result per model feature for the window: test (KS for numeric, chi-square for
    categorical), statistic, p-value (BH-adjusted under the default policy), effect size, the
    drift decision and why, NaN shares and unseen categories. Stored in `feature_drift_results`
    (the window's rows are replaced on re-materialization)."""
    settings = project.settings()
    engine = project.engine()
    drift = monitoring.compute_feature_drift(
        engine, settings, context.partition_key, policy_name=settings.policy
    )
    top = monitoring.top_drifted(drift.results, 15)
    return dg.MaterializeResult(
        metadata={
            "status": drift.status,
            "policy": drift.policy_name,
            "n_predictions": dg.MetadataValue.int(drift.n_rows),
            "n_features_analyzed": dg.MetadataValue.int(drift.n_analyzed),
            "n_features_drifted": dg.MetadataValue.int(drift.n_drifted),
            **monitoring.optional_float_metadata(
                drift_percentage=drift.drift_percentage,
                weighted_drift_percentage=drift.weighted_drift_percentage,
            ),
            "compute_seconds": dg.MetadataValue.float(drift.seconds),
            "top_drifted_features": _table(top),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=[feature_drift],
    group_name=GROUP,
    kinds={"html"},
)
def evidently_report(
    context: dg.AssetExecutionContext, project: CreditDriftResource
) -> dg.MaterializeResult:
    """Evidently 0.7 data-drift HTML report: the window as CURRENT data, the training reference
    (rebuilt exactly from the stored profile) as REFERENCE data. Columns: the drifted features
    plus the most important ones, capped (resource fields evidently_max_columns /
    evidently_all_columns), because Evidently takes minutes on all 419 columns."""
    report = monitoring.build_evidently(
        project.engine(),
        project.settings(),
        context.partition_key,
        max_columns=project.evidently_max_columns,
        include_all=project.evidently_all_columns,
    )
    if report is None:
        return dg.MaterializeResult(metadata={"status": "NO_DATA", "report": "no predictions"})
    return dg.MaterializeResult(
        metadata={
            "report_path": dg.MetadataValue.path(str(report.path)),
            "report_url": dg.MetadataValue.url(report.path.resolve().as_uri()),
            "n_columns": dg.MetadataValue.int(report.n_columns),
            "evidently_drifted_columns": dg.MetadataValue.int(report.n_drifted_columns),
            "evidently_drift_share": dg.MetadataValue.float(report.drift_share),
            "seconds": dg.MetadataValue.float(report.seconds),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=[feature_drift],
    group_name=GROUP,
    kinds={"sql"},
    check_specs=[
        dg.AssetCheckSpec("drifted_share", asset="drift_report"),
        dg.AssetCheckSpec(
            "important_features_stable",
            asset="drift_report",
            description="WARN when the importance-weighted drifted share reaches the WARNING "
            "share: a few drifted features the model leans on (an external score changing "
            "formula) can leave the plain share OK.",
        ),
        dg.AssetCheckSpec(
            "joint_distribution_stable",
            asset="drift_report",
            description="WARN when the domain classifier tells the window from the reference "
            "(a broken correlation that no single feature shows).",
        ),
    ],
)
def drift_report(
    context: dg.AssetExecutionContext, project: CreditDriftResource
) -> dg.MaterializeResult:
    """The window's row in `drift_reports` (replaced, not duplicated, on re-materialization):
    predictions, features analyzed and drifted, drift percentage (plain and importance-weighted),
    multivariate drift score and the status OK / WARNING / ALERT, or NO_DATA for an empty day."""
    settings = project.settings()
    report = monitoring.write_drift_report(project.engine(), settings, context.partition_key)
    severity = (
        dg.AssetCheckSeverity.ERROR if report.status == "ALERT" else dg.AssetCheckSeverity.WARN
    )
    check = dg.AssetCheckResult(
        check_name="drifted_share",
        passed=report.status in ("OK", "NO_DATA"),
        severity=severity,
        metadata={
            "status": report.status,
            **monitoring.optional_float_metadata(drift_percentage=report.drift_percentage),
        },
        description=f"{report.status}: {report.summary}",
    )
    weighted = report.weighted_drift_percentage
    important = dg.AssetCheckResult(
        check_name="important_features_stable",
        passed=weighted is None or weighted < 100 * settings.warning_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            **monitoring.optional_float_metadata(weighted_drift_percentage=weighted),
            "drifted_among_top_10": dg.MetadataValue.json(list(report.important_drifted)),
        },
    )
    joint = dg.AssetCheckResult(
        check_name="joint_distribution_stable",
        passed=not report.multivariate_drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=monitoring.optional_float_metadata(
            multivariate_auc=report.multivariate_score,
            auc_threshold=report.multivariate_threshold,
        ),
        description=None
        if report.multivariate_drifted is not None
        else "not run (empty window or fewer rows than CREDIT_DRIFT_MIN_WINDOW_ROWS)",
    )
    metadata = {
        "status": report.status,
        "report_date": context.partition_key,
        "n_predictions": dg.MetadataValue.int(report.n_predictions),
        "n_features_analyzed": dg.MetadataValue.int(report.n_features_analyzed),
        "n_features_drifted": dg.MetadataValue.int(report.n_features_drifted),
        **monitoring.optional_float_metadata(
            drift_percentage=report.drift_percentage,
            weighted_drift_percentage=report.weighted_drift_percentage,
            multivariate_auc=report.multivariate_score,
        ),
        "top_drifted_features": _table(report.top_features),
    }
    for name, path in report.figures.items():
        metadata[name] = dg.MetadataValue.md(monitoring.figure_markdown(path))
        metadata[f"{name}_path"] = dg.MetadataValue.path(str(path))
    return dg.MaterializeResult(metadata=metadata, check_results=[check, important, joint])


@dg.asset(
    partitions_def=daily_partitions,
    deps=[production_window, reference_profile],
    group_name=GROUP,
    kinds={"sql"},
)
def operational_metrics(
    context: dg.AssetExecutionContext, project: CreditDriftResource
) -> dg.MaterializeResult:
    """Volume, latency mean / p95, mean probability, refusal rate, score distribution, and drift of
    the model's score itself against the training scores: a shift in decisions is what the
    business feels first."""
    ops = monitoring.compute_operational_metrics(
        project.engine(), project.settings(), context.partition_key
    )
    metadata = {
        "n_predictions": dg.MetadataValue.int(ops.n_predictions),
        **monitoring.optional_float_metadata(**ops.numbers),
    }
    if ops.figure is not None:
        metadata["operational_figure"] = dg.MetadataValue.md(monitoring.figure_markdown(ops.figure))
        metadata["operational_figure_path"] = dg.MetadataValue.path(str(ops.figure))
    return dg.MaterializeResult(metadata=metadata)


windowed_assets = [
    production_window,
    feature_drift,
    evidently_report,
    drift_report,
    operational_metrics,
]
