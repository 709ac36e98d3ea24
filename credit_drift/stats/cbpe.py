"""Label-free performance estimation (CBPE, confidence-based): what the model's AUC, default
rate, confusion matrix and business cost are expected to be on a day whose outcomes are not
known yet, from its calibrated probabilities alone.

If the calibrated probability q_i is the true probability that application i defaults, then
y_i ~ Bernoulli(q_i) and, by linearity, E[TP] = sum of q_i over refused rows, E[FP] = sum of
(1 - q_i) over refused rows, E[FN] and E[TN] likewise over approved rows, E[default rate] =
mean(q) and E[cost] = cost_fn * E[FN] + cost_fp * E[FP], all exact. The expected AUC is
NannyML's: the ROC curve of the expected counts (ranking by the model's raw score, expected
TPR = cumulated q / sum q, expected FPR = cumulated (1 - q) / sum (1 - q)), integrated; a ratio
of expectations, not the expectation of the ratio, so it is close to but not exactly the mean
AUC over label draws (the difference shrinks as 1/n).

Calibration is fitted on the training hold-out with isotonic regression (`fit_isotonic`, the
pool-adjacent-violators algorithm, equal to scikit-learn's `IsotonicRegression(out_of_bounds=
"clip")`), and checked there: the expected calibration error of the raw model and of the
calibrated one (cross-fitted, so the check is not graded on its own fit).

What it cannot see: a change in P(default | features) (concept drift: a downturn, the same
applicant defaulting more often). The estimate assumes the hold-out's calibration still holds;
only realized outcomes can tell when it does not.

Pure numpy: no I/O, no Dagster.
"""

from dataclasses import dataclass

import numpy as np

from credit_drift.errors import CreditDriftError

#: The band: the mean of the estimates of day-sized samples of the hold-out plus or minus this
#: many standard deviations (NannyML's width).
BAND_STD = 3.0
#: Day-sized bootstrap samples of the hold-out behind each band, and their seed. A standard
#: deviation from 200 values has a relative standard error of 1 / sqrt(2 x 199) = 5%; from the 4
#: chunks that days of 1,000 rows leave of a 4,000-row hold-out (3 degrees of freedom) it is
#: below a third of the truth about one time in 20.
BAND_SAMPLES = 200
BAND_SEED = 15
#: Equal-count bins of the reliability table and of the expected calibration error.
CALIBRATION_BINS = 10
#: The metrics that get a band, in display order.
BAND_METRICS = ("auc", "default_rate", "cost_per_application")


class CbpeError(CreditDriftError, ValueError):
    """Inputs the estimate cannot use; the message names the array and what is wrong."""


def _vector(name: str, values, *, unit: bool = False) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise CbpeError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise CbpeError(f"{name} has {int((~np.isfinite(a)).sum())} non-finite value(s)")
    if unit and len(a) and (a.min() < 0 or a.max() > 1):
        raise CbpeError(f"{name} must lie in [0, 1], got [{a.min()}, {a.max()}]")
    return a


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise CbpeError(f"arrays of different lengths: {lengths}")


# -- calibration -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class IsotonicCalibrator:
    """A non-decreasing map raw score -> probability: linear between the knots `x` (strictly
    increasing) and their fitted values `y`, constant beyond the first and last knot."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, scores) -> np.ndarray:
        return np.interp(_vector("scores", scores), self.x, self.y)


def fit_isotonic(scores, outcomes) -> IsotonicCalibrator:
    """Least-squares non-decreasing fit of the 0/1 `outcomes` on `scores` (pool adjacent
    violators; tied scores share their mean outcome first, as scikit-learn does)."""
    x = _vector("scores", scores)
    y = _vector("outcomes", outcomes, unit=True)
    _same_length(scores=x, outcomes=y)
    if len(x) == 0:
        raise CbpeError("cannot fit a calibration on no rows")
    knots, inverse = np.unique(x, return_inverse=True)
    weight = np.bincount(inverse).astype(np.float64)
    mean = np.bincount(inverse, weights=y) / weight
    # Blocks of pooled knots: value, weight, number of knots. A new knot merges backwards while
    # it breaks the order; each merge removes a block, so the loop is linear overall.
    values: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for v, w in zip(mean.tolist(), weight.tolist(), strict=True):
        values.append(v)
        weights.append(w)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w2, w1 = weights.pop(), weights[-1]
            v2, v1 = values.pop(), values[-1]
            values[-1] = (v1 * w1 + v2 * w2) / (w1 + w2)
            weights[-1] = w1 + w2
            merged = sizes.pop()
            sizes[-1] += merged
    fitted = np.repeat(np.asarray(values), np.asarray(sizes))
    return IsotonicCalibrator(knots, fitted)


def reliability_table(probabilities, outcomes, n_bins: int = CALIBRATION_BINS) -> dict:
    """Equal-count bins of `probabilities` (sorted; the last bins take the remainder): per bin
    the row count, mean predicted probability and observed default rate, as arrays."""
    p = _vector("probabilities", probabilities, unit=True)
    y = _vector("outcomes", outcomes, unit=True)
    _same_length(probabilities=p, outcomes=y)
    if len(p) == 0:
        raise CbpeError("cannot check calibration on no rows")
    order = np.argsort(p, kind="stable")
    bins = [b for b in np.array_split(order, min(n_bins, len(p))) if len(b)]
    return {
        "n": np.array([len(b) for b in bins]),
        "predicted": np.array([p[b].mean() for b in bins]),
        "observed": np.array([y[b].mean() for b in bins]),
    }


def expected_calibration_error(probabilities, outcomes, n_bins: int = CALIBRATION_BINS) -> float:
    """Row-weighted mean of |mean predicted - observed rate| over equal-count bins."""
    t = reliability_table(probabilities, outcomes, n_bins)
    return float(np.sum(t["n"] * np.abs(t["predicted"] - t["observed"])) / np.sum(t["n"]))


@dataclass(frozen=True)
class CalibrationCheck:
    """How well the hold-out's probabilities match its outcomes, before and after calibration.

    raw_ece: the model's own probabilities; calibrated_ece: isotonic fitted on one half of the
    hold-out and graded on the other, both ways (cross-fitted); raw_is_calibrated: the raw
    model was already as well calibrated as the cross-fitted isotonic map (calibration brings
    nothing); mean_raw / mean_calibrated / observed_rate: mean predicted PD and default rate."""

    n: int
    observed_rate: float
    mean_raw: float
    mean_calibrated: float
    raw_ece: float
    calibrated_ece: float
    raw_is_calibrated: bool
    reliability: dict


def check_calibration(scores, outcomes, seed: int = 0) -> CalibrationCheck:
    """The calibration check of the hold-out (see `CalibrationCheck`)."""
    x = _vector("scores", scores, unit=True)
    y = _vector("outcomes", outcomes, unit=True)
    _same_length(scores=x, outcomes=y)
    if len(x) < 4 or y.min() == y.max():
        raise CbpeError(
            f"the calibration hold-out needs at least 4 rows and both outcomes, got {len(x)} "
            f"row(s) with {int(y.sum())} default(s)"
        )
    half = np.random.default_rng(seed).permutation(len(x)) < len(x) // 2
    crossed = np.empty_like(x)
    for fit_on in (half, ~half):
        crossed[~fit_on] = fit_isotonic(x[fit_on], y[fit_on])(x[~fit_on])
    raw_ece = expected_calibration_error(x, y)
    calibrated_ece = expected_calibration_error(crossed, y)
    table = reliability_table(x, y)
    table["calibrated"] = np.array(
        [crossed[b].mean() for b in np.array_split(np.argsort(x, kind="stable"), len(table["n"]))]
    )
    return CalibrationCheck(
        n=len(x),
        observed_rate=float(y.mean()),
        mean_raw=float(x.mean()),
        mean_calibrated=float(crossed.mean()),
        raw_ece=raw_ece,
        calibrated_ece=calibrated_ece,
        raw_is_calibrated=raw_ece <= calibrated_ece,
        reliability=table,
    )


# -- the estimate ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PerformanceEstimate:
    """Expected performance of `n` decisions. auc is NaN when undefined (fewer than 2 rows, or
    every q 0 or every q 1: one expected class only)."""

    n: int
    expected_tp: float
    expected_fp: float
    expected_fn: float
    expected_tn: float
    default_rate: float
    auc: float
    cost: float
    cost_per_application: float

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


def expected_auc(scores, probabilities) -> float:
    """NannyML's expected ROC AUC: rank by `scores` (ties grouped, as `roc_auc_score` does),
    expected TPR/FPR from the calibrated `probabilities`, trapezoidal integral. Equal to
    `roc_auc_score(y, scores)` when `probabilities` is the 0/1 vector y."""
    s = _vector("scores", scores)
    q = _vector("probabilities", probabilities, unit=True)
    _same_length(scores=s, probabilities=q)
    positives, negatives = q.sum(), (1.0 - q).sum()
    if len(s) < 2 or positives <= 0 or negatives <= 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, q = s[order], q[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tpr = np.r_[0.0, np.cumsum(q)[last_of_tie]] / positives
    fpr = np.r_[0.0, np.cumsum(1.0 - q)[last_of_tie]] / negatives
    return float(np.trapezoid(tpr, fpr))


def estimate_performance(
    scores, probabilities, refused, *, cost_fn: float, cost_fp: float
) -> PerformanceEstimate:
    """The expected confusion matrix, default rate, AUC and cost of decisions `refused`
    (bool: the model refused the application) whose calibrated default probabilities are
    `probabilities`; `scores` are the raw model scores the AUC ranks by."""
    s = _vector("scores", scores)
    q = _vector("probabilities", probabilities, unit=True)
    r = np.asarray(refused)
    if r.dtype != bool:
        raise CbpeError(f"refused must be a boolean array, got dtype {r.dtype}")
    _same_length(scores=s, probabilities=q, refused=r)
    if len(q) == 0:
        raise CbpeError("cannot estimate performance on no rows")
    for name, cost in (("cost_fn", cost_fn), ("cost_fp", cost_fp)):
        if not (np.isfinite(cost) and cost >= 0):
            raise CbpeError(f"{name} must be a non-negative number, got {cost!r}")
    tp, fn = float(q[r].sum()), float(q[~r].sum())
    fp, tn = float((1.0 - q[r]).sum()), float((1.0 - q[~r]).sum())
    cost = cost_fn * fn + cost_fp * fp
    return PerformanceEstimate(
        n=len(q),
        expected_tp=tp,
        expected_fp=fp,
        expected_fn=fn,
        expected_tn=tn,
        default_rate=float(q.mean()),
        auc=expected_auc(s, q),
        cost=float(cost),
        cost_per_application=float(cost / len(q)),
    )


# -- fit on the hold-out, bands from day-sized samples of it ---------------------------------
@dataclass(frozen=True)
class Band:
    """A metric's band for days of `size` rows: mean +/- BAND_STD standard deviations of the
    estimates of `n_samples` day-sized samples of the hold-out (see `CbpeReference.bands`)."""

    metric: str
    mean: float
    std: float
    lower: float
    upper: float
    n_samples: int
    size: int

    def contains(self, value: float) -> bool:
        return bool(self.lower <= value <= self.upper)


@dataclass(frozen=True, eq=False)
class CbpeReference:
    """What `fit_cbpe` keeps of the hold-out: the calibration map, its check, and the
    hold-out's raw scores (for the bands)."""

    calibrator: IsotonicCalibrator
    check: CalibrationCheck
    scores: np.ndarray

    def estimate(self, scores, refused, *, cost_fn: float, cost_fp: float) -> PerformanceEstimate:
        """The estimate of a window of raw `scores` and decisions `refused`."""
        return estimate_performance(
            scores, self.calibrator(scores), refused, cost_fn=cost_fn, cost_fp=cost_fp
        )

    def bands(
        self, size: int, *, threshold: float, cost_fn: float, cost_fp: float
    ) -> dict[str, Band] | None:
        """Bands of `BAND_METRICS` for days of `size` rows decided by `score >= threshold`.

        `BAND_SAMPLES` samples of `size` rows drawn with replacement from the hold-out (a
        bootstrap, seeded by `size`: the same day size gets the same band) are estimated like a
        day; the band is their mean +/- `BAND_STD` standard deviations. The standard deviation
        is the bootstrap's times sqrt(1 + size / N) (N: the hold-out's rows): a clean day
        differs from the band's centre by its own sampling error and by the hold-out's, which
        the centre is computed from. Cutting the hold-out into consecutive chunks instead (as
        NannyML does) leaves only N / size of them, e.g. 4 for days of 1,000 rows on the demo's
        4,000-row hold-out: a standard deviation from 4 values is itself so uncertain that 29
        of 100 clean days fell outside that band, against 3 of the same 100 outside this one
        (benchmarks/bench_band.py, 5 seeds). None when `size` is larger than half the
        hold-out: the hold-out's own error would then dominate the band."""
        if size < 1:
            raise CbpeError(f"the day size must be at least 1, got {size}")
        n_ref = len(self.scores)
        if 2 * size > n_ref:
            return None
        rng = np.random.default_rng([BAND_SEED, size])
        estimates = []
        for _ in range(BAND_SAMPLES):
            s = self.scores[rng.integers(0, n_ref, size)]
            estimates.append(self.estimate(s, s >= threshold, cost_fn=cost_fn, cost_fp=cost_fp))
        inflation = float(np.sqrt(1.0 + size / n_ref))
        bands = {}
        for name in BAND_METRICS:
            values = np.array([e.metric(name) for e in estimates])
            values = values[np.isfinite(values)]
            if len(values) < 2:
                continue
            mean, std = float(values.mean()), float(values.std(ddof=1)) * inflation
            bands[name] = Band(
                name,
                mean,
                std,
                mean - BAND_STD * std,
                mean + BAND_STD * std,
                len(values),
                size,
            )
        return bands


def fit_cbpe(scores, outcomes) -> CbpeReference:
    """Fit the calibration on the hold-out's raw `scores` and 0/1 `outcomes`, and check it."""
    x = _vector("scores", scores, unit=True)
    y = _vector("outcomes", outcomes, unit=True)
    if len(y) and not np.isin(y, (0.0, 1.0)).all():
        raise CbpeError("outcomes must be 0 or 1")
    check = check_calibration(x, y)
    return CbpeReference(fit_isotonic(x, y), check, x)
