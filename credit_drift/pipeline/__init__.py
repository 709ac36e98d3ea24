"""The drift pipeline's work, one module per step, with no Dagster in sight.

`credit_drift.defs` wires these into assets (and the CLI and tests call them directly): each step
takes the values the previous ones produced (a `ProductionWindow`, a `FeatureDriftResult`, the
loaded reference) and returns its own, so the data of a day travels through Dagster's IO manager,
never through a file a later step finds by itself.

    config.py        PipelineConfig: the settings the steps need, resolved once
    reference.py     fit and store the reference profile; load it back
    window.py        ProductionWindow: one day's predictions, read from the log
    feature_drift.py FeatureDriftResult: every feature tested and judged, stored per day
    evidently.py     the day's Evidently HTML report
    report.py        the day's drift report row, its alert (outbox) and the notebook's figures
    operations.py    volume, latency, refusal rate, score drift
    alerts.py        delivering the outbox's alerts to the webhook, once
    parts.py         how the values above are split into frames + fields for storage
    outcome_file.py  a user's file of observed outcomes (credit-drift outcomes load)
"""
