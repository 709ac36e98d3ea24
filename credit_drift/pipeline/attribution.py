"""Why the day's score moved: the model's contributions on the reference profile's joint sample
of training rows against the day's predictions (`stats.attribution`).

The reference side is the profile's stored joint sample (5,000 seeded training rows by default,
all numeric features): the training file is never re-read. Categorical features are not in that
sample; their reference values are drawn from the stored category frequencies (seeded), which
keeps each one's own distribution but not its correlation with the other features (see
`categorical_from_marginals`).

Cost: LightGBM's TreeSHAP costs about 10-25 us per row and tree on this kind of machine with
419 features (measured: 5,000 rows of a 100-tree model, 12 s), far more than scoring. Each side
is therefore a seeded subsample of `row_tree_budget / number of trees` rows (at least
`MIN_ROWS`, at most `max_rows`): 5,000 rows for a 20-tree model, 250 for the shipped 400-tree
one. The result carries the standard error of every mean change it reports, so a small move is
read against its noise.
"""

import numpy as np
import pandas as pd

from credit_drift.pipeline.memo import BoundedCache
from credit_drift.pipeline.reference import LoadedReference
from credit_drift.pipeline.window import ProductionWindow
from credit_drift.stats.attribution import ScoreAttribution, attribute_mean_change

#: Rows of each side the contributions are computed on, at most (a seeded subsample).
DEFAULT_MAX_ROWS = 5_000
#: Rows x trees of each side: bounds the step to a few seconds whatever the model's size.
DEFAULT_ROW_TREE_BUDGET = 100_000
#: Fewer rows than this and the means are too noisy to rank features: the budget is exceeded.
MIN_ROWS = 200


def reference_sample_frame(reference: LoadedReference, seed: int = 0) -> pd.DataFrame:
    """The profile's joint sample as raw feature values in schema order (categorical features
    drawn from their stored frequencies, missing at their stored NaN share)."""
    profile = reference.profile
    k = profile.sample.shape[0]
    columns = dict(zip(profile.sample_columns, profile.sample.T, strict=True))
    rng = np.random.default_rng(seed)
    data = {}
    for spec in profile.schema.features:
        if spec.name in columns:
            data[spec.name] = columns[spec.name]
            continue
        ref = profile.categorical(spec.name)
        choices = np.asarray([*ref.categories, None], dtype=object)
        weights = np.append(np.asarray(ref.counts, dtype=np.float64), ref.nan_count)
        if weights.sum() == 0:
            data[spec.name] = np.full(k, None, dtype=object)
        else:
            data[spec.name] = rng.choice(choices, size=k, p=weights / weights.sum())
    return pd.DataFrame(data, columns=list(profile.schema.names))


def _cap(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.iloc[rows]


def compute_score_attribution(
    artifacts,
    reference: LoadedReference,
    window: ProductionWindow,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    row_tree_budget: int = DEFAULT_ROW_TREE_BUDGET,
    seed: int = 0,
) -> ScoreAttribution | None:
    """The change in mean log-odds between the reference sample and the day, split over the
    features; None when the day is empty or the profile has no joint sample. `artifacts` is the
    model the profile was fitted for (`ModelArtifacts`)."""
    from credit_drift.model.artifacts import model_matrix

    if window.n_rows == 0 or reference.profile.sample.shape[0] == 0:
        return None
    schema = artifacts.schema
    rows = rows_for(artifacts.booster.num_trees(), max_rows, row_tree_budget)
    ref_contrib = reference_contributions(artifacts, reference, rows, seed)
    cur_frame = _cap(window.features, rows, seed)
    cur_contrib = artifacts.contributions(model_matrix(schema, cur_frame))
    return attribute_mean_change(ref_contrib, cur_contrib, schema.names)


#: Reference-side contributions kept by `reference_contributions` (one per profile, model, row
#: count and seed; 1,000 rows of 419 features are 3.4 MB).
CACHED_CONTRIBUTIONS = 4

_contributions: BoundedCache[np.ndarray] = BoundedCache(CACHED_CONTRIBUTIONS)


def reference_contributions(
    artifacts, reference: LoadedReference, rows: int, seed: int = 0
) -> np.ndarray:
    """The model's contributions on the reference side: `rows` rows of the profile's joint
    sample (`reference_sample_frame`, seeded subsample). They depend only on the profile, the
    model, `rows` and `seed`, not on the day, so they are computed once per process for each of
    these (half of the attribution's cost on every later day of a backfill or a worker) and
    kept, read-only, keyed by the profile's and the model's content versions; at most
    `CACHED_CONTRIBUTIONS` are kept."""
    from credit_drift.model.artifacts import model_matrix

    key = (reference.profile.profile_version, artifacts.version, int(rows), int(seed))
    hit = _contributions.get(key)
    if hit is not None:
        return hit
    frame = _cap(reference_sample_frame(reference, seed), rows, seed)
    out = artifacts.contributions(model_matrix(artifacts.schema, frame))
    out.setflags(write=False)
    _contributions.put(key, out)
    return out


def clear_contributions_cache() -> None:
    """Forget every kept reference-side contribution matrix."""
    _contributions.clear()


def rows_for(n_trees: int, max_rows: int, row_tree_budget: int) -> int:
    """Rows per side for a model of `n_trees` trees within the budget."""
    return max(MIN_ROWS, min(max_rows, row_tree_budget // max(n_trees, 1)))


def categorical_from_marginals(reference: LoadedReference) -> tuple[str, ...]:
    """The features whose reference side is drawn from their frequencies, not the joint sample."""
    sampled = set(reference.profile.sample_columns)
    return tuple(n for n in reference.profile.schema.names if n not in sampled)
