"""Test data: a seeded synthetic feature table with the shapes of credit data, for the
statistics' tests: continuous, heavy-tailed, integer-count and 0/1 columns, NaN shares from none to
mostly missing, a constant column and a strongly correlated pair.

Pure numpy/pandas. The column layout (which kind, which parameters) depends only on
`n_features` and `layout_seed`, so a reference and a window drawn with different row seeds come
from the same distribution. This is not the data helper's generator and does not try to be.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from credit_drift.features import FeatureSchema

#: Share of columns of each kind (the rest are continuous).
_BINARY_SHARE, _INTEGER_SHARE, _HEAVY_TAIL_SHARE, _MOSTLY_MISSING_SHARE = 0.25, 0.20, 0.10, 0.05
#: Correlation of the pair (f000, f001) that the multivariate detector's tests break.
PAIR_CORRELATION = 0.9


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # 'normal' | 'lognormal' | 'integer' | 'binary' | 'constant'
    a: float  # location / rate / probability
    b: float  # scale
    nan_share: float


def layout(n_features: int = 419, layout_seed: int = 20261101) -> tuple[ColumnSpec, ...]:
    """The fixed column layout: f000/f001 are the correlated continuous pair, f002 is constant."""
    rng = np.random.default_rng(layout_seed)
    specs = []
    for j in range(n_features):
        name = f"f{j:03d}"
        nan_share = float(rng.choice([0.0, 0.0, 0.01, 0.05, 0.2]))
        u = rng.random()
        if j < 2:
            specs.append(ColumnSpec(name, "normal", 0.0, 1.0, 0.0))
        elif j == 2:
            specs.append(ColumnSpec(name, "constant", 1.0, 0.0, 0.0))
        elif u < _BINARY_SHARE:
            specs.append(ColumnSpec(name, "binary", float(rng.uniform(0.02, 0.5)), 0, nan_share))
        elif u < _BINARY_SHARE + _INTEGER_SHARE:
            specs.append(ColumnSpec(name, "integer", float(rng.uniform(0.3, 20)), 0, nan_share))
        elif u < _BINARY_SHARE + _INTEGER_SHARE + _HEAVY_TAIL_SHARE:
            sigma = float(rng.uniform(0.5, 1.5))
            specs.append(ColumnSpec(name, "lognormal", float(rng.uniform(8, 12)), sigma, nan_share))
        elif u < _BINARY_SHARE + _INTEGER_SHARE + _HEAVY_TAIL_SHARE + _MOSTLY_MISSING_SHARE:
            specs.append(ColumnSpec(name, "normal", 0.0, 1.0, float(rng.uniform(0.6, 0.9))))
        else:
            loc, scale = float(rng.normal(0, 100)), float(rng.uniform(0.1, 1000))
            specs.append(ColumnSpec(name, "normal", loc, scale, nan_share))
    return tuple(specs)


def mixed_frame(
    n_rows: int,
    seed: int,
    *,
    n_features: int = 419,
    layout_seed: int = 20261101,
    shift: float = 0.0,
) -> pd.DataFrame:
    """`n_rows` rows drawn from the layout's distribution with `numpy.random.default_rng(seed)`.

    `shift` > 0 moves every non-constant column by `shift` of its scale (continuous: location
    + shift*scale; integer: rate * (1 + shift); binary: probability + shift/4, capped).
    """
    rng = np.random.default_rng(seed)
    out = {}
    z_pair = rng.standard_normal((n_rows, 2))
    for j, spec in enumerate(layout(n_features, layout_seed)):
        if j == 0:
            col = z_pair[:, 0] + shift
        elif j == 1:
            rho = PAIR_CORRELATION
            col = rho * z_pair[:, 0] + np.sqrt(1 - rho**2) * z_pair[:, 1] + shift
        elif spec.kind == "constant":
            col = np.full(n_rows, spec.a)
        elif spec.kind == "binary":
            col = (rng.random(n_rows) < min(spec.a + shift / 4, 1.0)).astype(np.float64)
        elif spec.kind == "integer":
            col = rng.poisson(spec.a * (1 + shift), n_rows).astype(np.float64)
        elif spec.kind == "lognormal":
            col = np.round(rng.lognormal(spec.a + shift * spec.b, spec.b, n_rows), 2)
        else:
            col = spec.a + spec.b * (rng.standard_normal(n_rows) + shift)
        if spec.nan_share:
            col[rng.random(n_rows) < spec.nan_share] = np.nan
        out[spec.name] = col
    return pd.DataFrame(out)


def mixed_schema(n_features: int = 419) -> FeatureSchema:
    return FeatureSchema.numeric([f"f{j:03d}" for j in range(n_features)])


def mixed_importance(n_features: int = 419, seed: int = 7) -> dict[str, float]:
    """Importances like a gradient-boosting model's: a few dominant features (f000 and f001
    among them), a long tail, normalized to sum 1."""
    rng = np.random.default_rng(seed)
    raw = rng.pareto(1.2, n_features)
    raw[:2] = raw.max() * 2
    raw = raw / raw.sum()
    return {f"f{j:03d}": float(raw[j]) for j in range(n_features)}
