"""Drift statistics, pure numpy/scipy/pandas: the training reference profile, KS/PSI/Wasserstein
and chi-square comparisons of a window against it, the drift decision policy, the multivariate
(domain-classifier) detector and score drift. No I/O, no Dagster, no SQLAlchemy, no Evidently.

Public API (import from the submodules):
    reference.fit_reference, reference.ReferenceProfile
    ks.ks_2samp_many
    effect.psi_many, effect.wasserstein_norm_many
    categorical.compare_categorical
    results.FEATURE_RESULT_COLUMNS (the per-feature result shape), results.top_drifted
    compare.compare_window (measure), policy.decide (judge), policy.evaluate_window (both),
    policy.DriftPolicy, policy.get_policy, policy.WindowDrift, policy.decide_joint,
    policy.status_for, policy.benjamini_hochberg
    multivariate.domain_classifier_drift, multivariate.MultivariateResult
    score_drift.score_drift
"""
