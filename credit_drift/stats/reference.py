"""The training reference profile: fitted once from the whole training set, stored, and compared
against every window.

Pure (numpy/pandas). A numeric feature is summarized *exactly* by its sorted distinct non-NaN
values and their counts: that is everything a two-sample KS test, the Wasserstein distance or
quantile bins need, so a window compared against the stored profile gets the same statistic as
against the raw training column. A categorical feature is summarized by its category counts.
Beside the per-feature summaries the profile keeps a seeded random joint sample of rows (for the
multivariate detector), the model's training scores (for score drift) and feature importances.
"""

import hashlib
import io
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema, FeatureSpec, _is_missing
from credit_drift.features import category_text as _category_text

#: Bumped when the byte layout of `to_records` changes; `from_records` refuses other layouts.
PROFILE_FORMAT = 1
#: Rows of the joint sample kept for the multivariate detector (the detector caps its own use).
DEFAULT_SAMPLE_ROWS = 5_000
#: zlib level for stored summaries: distinct float values barely compress, so the fastest level
#: keeps nearly all of the gain (measured: level 1 takes half the time of level 6, 1% larger).
_ZLIB_LEVEL = 1


class ReferenceProfileError(CreditDriftError, ValueError):
    """The training frame or a stored profile cannot make a reference; the message says why."""


# -- per-feature summaries ------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NumericReference:
    """Exact summary of one numeric column: distinct non-NaN values (sorted) and their counts."""

    values: np.ndarray  # float64, strictly increasing
    counts: np.ndarray  # positive integers (narrowest unsigned dtype), same length
    nan_count: int
    n: int = field(init=False)  # number of non-NaN reference values

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float64)
        counts = np.ascontiguousarray(self.counts, dtype=np.int64)
        if values.ndim != 1 or values.shape != counts.shape:
            raise ReferenceProfileError(
                f"numeric summary needs 1-D values and counts of one length, got shapes "
                f"{values.shape} and {counts.shape}"
            )
        if values.size and (np.isnan(values).any() or np.any(np.diff(values) <= 0)):
            raise ReferenceProfileError(
                "numeric summary values must be NaN-free and strictly increasing"
            )
        if counts.size and counts.min() <= 0:
            raise ReferenceProfileError("numeric summary counts must be positive")
        object.__setattr__(self, "values", values)
        # Kept in the narrowest unsigned type that holds them: a continuous column's counts are
        # all 1, and int64 would double the memory of a profile.
        object.__setattr__(self, "counts", counts.astype(_narrow_uint(counts)))
        object.__setattr__(self, "nan_count", int(self.nan_count))
        object.__setattr__(self, "n", int(counts.sum()))

    @classmethod
    def from_values(cls, column: np.ndarray) -> "NumericReference":
        """Summarize a raw column (NaN = missing)."""
        column = np.asarray(column, dtype=np.float64).ravel()
        nan = np.isnan(column)
        values, counts = np.unique(column[~nan], return_counts=True)
        return cls(values, counts, int(nan.sum()))

    @classmethod
    def from_sorted(cls, sorted_values: np.ndarray) -> "NumericReference":
        """Summarize an already sorted NaN-free column without sorting it again."""
        s = np.asarray(sorted_values, dtype=np.float64).ravel()
        if s.size == 0:
            return cls(np.empty(0), np.empty(0, dtype=np.int64), 0)
        if np.isnan(s).any() or np.any(s[1:] < s[:-1]):
            raise ReferenceProfileError("from_sorted needs a sorted, NaN-free array")
        starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
        counts = np.diff(np.append(starts, s.size))
        return cls(s[starts], counts, 0)

    @property
    def n_rows(self) -> int:
        return self.n + self.nan_count

    @cached_property
    def cum(self) -> np.ndarray:
        """cum[k] = number of reference values < values[k]; cum[-1] = n (length len(values)+1).

        Cached: every window reads it, and computing it per window would cost a pass over all
        distinct values per feature. Memory: about 25 bytes per distinct value with values and
        counts."""
        out = np.zeros(self.values.size + 1, dtype=np.int64)
        np.cumsum(self.counts, dtype=np.int64, out=out[1:])
        return out

    @cached_property
    def std(self) -> float:
        """Population standard deviation (ddof=0, like np.std) of the non-NaN values."""
        if self.n == 0:
            return float("nan")
        # Plain sums, not np.dot: BLAS vector calls spin up its thread pool for nothing.
        mean = float((self.values * self.counts).sum() / self.n)
        return float(np.sqrt((self.counts * (self.values - mean) ** 2).sum() / self.n))

    def expand(self) -> np.ndarray:
        """The sorted non-NaN reference column itself (for tests and small references)."""
        return np.repeat(self.values, self.counts)

    def quantile_edges(self, n_bins: int) -> np.ndarray:
        """Distinct interior bin edges at the reference's 1/n_bins quantiles.

        Edge i is the smallest reference value whose ECDF reaches i/n_bins (the "inverted CDF"
        quantile, which is always an observed value); bins are (-inf, e1], (e1, e2], ..., (ek, inf).
        Ties collapse edges, so a 0/1 column gets the single edge 0.
        """
        if self.n == 0 or n_bins < 2:
            return np.empty(0)
        # ECDF >= i/n_bins  <=>  count >= ceil(i * n / n_bins): integer keys, so searchsorted
        # does not convert the whole int64 cumulative array to float on every call.
        targets = -((-np.arange(1, n_bins, dtype=np.int64) * self.n) // n_bins)
        idx = np.searchsorted(self.cum[1:], targets, side="left")
        edges = np.unique(self.values[np.minimum(idx, self.values.size - 1)])
        # The last edge at the maximum would leave an always-empty last bin.
        return edges[edges < self.values[-1]]

    def bin_counts(self, edges: np.ndarray) -> np.ndarray:
        """Reference counts in the bins (-inf, e1], ..., (ek, inf)."""
        at_or_below = self.cum[np.searchsorted(self.values, edges, side="right")]
        return np.diff(np.concatenate(([0], at_or_below, [self.n])))

    def quantile_bins(self, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
        """`quantile_edges(n_bins)` and the reference's `bin_counts` in them, computed once per
        summary and number of bins (every window's PSI needs them; read-only arrays)."""
        cached = self._quantile_bins.get(n_bins)
        if cached is None:
            edges = self.quantile_edges(n_bins)
            counts = self.bin_counts(edges)
            edges.flags.writeable = counts.flags.writeable = False
            cached = self._quantile_bins.setdefault(n_bins, (edges, counts))
        return cached

    @cached_property
    def _quantile_bins(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {}

    def _payload(self) -> bytes:
        return _npy_bytes(self.values, self.counts)

    def equals(self, other: "NumericReference") -> bool:
        return (
            self.nan_count == other.nan_count
            and np.array_equal(self.values, other.values)
            and np.array_equal(self.counts, other.counts)
        )


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """Category counts of one categorical column (categories as text, the stored form)."""

    categories: tuple[str, ...]  # observed in training, sorted
    counts: np.ndarray  # int64, > 0, aligned with categories
    nan_count: int

    def __post_init__(self) -> None:
        counts = np.ascontiguousarray(self.counts, dtype=np.int64)
        if counts.shape != (len(self.categories),):
            raise ReferenceProfileError(
                f"categorical summary has {len(self.categories)} categories and "
                f"{counts.shape} counts"
            )
        object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "nan_count", int(self.nan_count))

    @classmethod
    def from_values(cls, column: pd.Series | Sequence[Any]) -> "CategoricalReference":
        text = category_text(column)
        missing = text.isna()
        counts = text[~missing].value_counts(sort=False)
        counts = counts.sort_index()
        return cls(tuple(counts.index), counts.to_numpy(np.int64), int(missing.sum()))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def n_rows(self) -> int:
        return self.n + self.nan_count

    @property
    def frequencies(self) -> np.ndarray:
        return self.counts / max(self.n, 1)

    def _payload(self) -> bytes:
        return json.dumps(
            {"categories": list(self.categories), "counts": self.counts.tolist()}
        ).encode()

    def equals(self, other: "CategoricalReference") -> bool:
        return (
            self.nan_count == other.nan_count
            and self.categories == other.categories
            and np.array_equal(self.counts, other.counts)
        )


def category_text(column: pd.Series | Sequence[Any]) -> pd.Series:
    """Categorical values as the text the storage layer keeps (None when missing).

    Same rule as `FeatureSchema.pack`: 1, 1.0 and "1" are one category.
    """
    series = column if isinstance(column, pd.Series) else pd.Series(list(column), dtype=object)
    return series.map(lambda v: None if _is_missing(v) else _category_text(v)).astype(object)


FeatureReference = NumericReference | CategoricalReference


# -- the profile ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Everything a window is compared against. Build with `fit_reference`, store with
    `to_records`, restore with `from_records`; `profile_version` is a content hash."""

    schema: FeatureSchema
    features: Mapping[str, FeatureReference]  # schema order
    importance: Mapping[str, float]  # every schema feature; 0.0 when the model gave none
    n_rows: int
    sample: np.ndarray  # (k, len(sample_columns)) float64, seeded random training rows
    sample_columns: tuple[str, ...]
    training_scores: NumericReference | None = None
    seed: int = 0
    profile_version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        missing = [n for n in self.schema.names if n not in self.features]
        if missing:
            raise ReferenceProfileError(f"profile lacks summaries for features {missing[:10]}")
        sample = np.ascontiguousarray(self.sample, dtype=np.float64)
        if sample.ndim != 2 or sample.shape[1] != len(self.sample_columns):
            raise ReferenceProfileError(
                f"joint sample has shape {sample.shape} for {len(self.sample_columns)} columns"
            )
        object.__setattr__(self, "sample", sample)
        object.__setattr__(self, "features", {n: self.features[n] for n in self.schema.names})
        object.__setattr__(
            self, "importance", {n: float(self.importance.get(n, 0.0)) for n in self.schema.names}
        )
        object.__setattr__(self, "sample_columns", tuple(self.sample_columns))
        object.__setattr__(self, "profile_version", self._content_hash())

    # -- access ---------------------------------------------------------------------------
    def numeric(self, name: str) -> NumericReference:
        ref = self.features[name]
        if not isinstance(ref, NumericReference):
            raise ReferenceProfileError(f"feature {name!r} is categorical, not numeric")
        return ref

    def categorical(self, name: str) -> CategoricalReference:
        ref = self.features[name]
        if not isinstance(ref, CategoricalReference):
            raise ReferenceProfileError(f"feature {name!r} is numeric, not categorical")
        return ref

    def equals(self, other: "ReferenceProfile") -> bool:
        """Exact equality of every stored number (what the round-trip test asserts)."""
        scores_equal = (self.training_scores is None and other.training_scores is None) or (
            self.training_scores is not None
            and other.training_scores is not None
            and self.training_scores.equals(other.training_scores)
        )
        return (
            self.schema == other.schema
            and self.n_rows == other.n_rows
            and self.seed == other.seed
            and dict(self.importance) == dict(other.importance)
            and self.sample_columns == other.sample_columns
            and np.array_equal(self.sample, other.sample, equal_nan=True)
            and scores_equal
            and all(
                type(self.features[n]) is type(other.features[n])
                and self.features[n].equals(other.features[n])  # type: ignore[arg-type]
                for n in self.schema.names
            )
        )

    # -- serialization --------------------------------------------------------------------
    def to_records(self) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, bytes]]:
        """(header, feature_rows, blobs) for storage.

        header: the `reference_profiles` row (profile_version, feature_schema_version, n_rows).
        feature_rows: one per feature, schema order, with the zlib-compressed `summary` bytes.
        blobs: named opaque bytes (`meta`, `joint_sample`, and `training_scores` when present).
        Categorical features keep the schema's category list inside their summary, so the
        feature schema can be rebuilt from the rows alone.
        """
        header = {
            "profile_version": self.profile_version,
            "feature_schema_version": self.schema.version,
            "n_rows": self.n_rows,
        }
        rows = []
        for position, spec in enumerate(self.schema.features):
            ref = self.features[spec.name]
            payload = ref._payload()
            if spec.kind == "categorical":
                doc = json.loads(payload)
                doc["schema_categories"] = list(spec.categories)
                payload = json.dumps(doc).encode()
            rows.append(
                {
                    "feature": spec.name,
                    "position": position,
                    "kind": spec.kind,
                    "n_rows": ref.n_rows,
                    "nan_count": ref.nan_count,
                    "importance": self.importance[spec.name],
                    "summary": zlib.compress(payload, _ZLIB_LEVEL),
                }
            )
        meta = {
            "format": PROFILE_FORMAT,
            "seed": self.seed,
            "sample_columns": list(self.sample_columns),
            "profile_version": self.profile_version,
        }
        blobs = {
            "meta": json.dumps(meta).encode(),
            "joint_sample": zlib.compress(_npy_bytes(self.sample), _ZLIB_LEVEL),
        }
        if self.training_scores is not None:
            blobs["training_scores"] = zlib.compress(self.training_scores._payload(), _ZLIB_LEVEL)
        return header, rows, blobs

    @classmethod
    def from_records(
        cls,
        header: Mapping[str, Any],
        feature_rows: Sequence[Mapping[str, Any]],
        blobs: Mapping[str, bytes],
    ) -> "ReferenceProfile":
        """Inverse of `to_records`; raises `ReferenceProfileError` when the records are inconsistent
        (wrong format, a feature schema or content hash that does not match)."""
        if "meta" not in blobs or "joint_sample" not in blobs:
            raise ReferenceProfileError(f"stored profile lacks blobs: has {sorted(blobs)}")
        meta = json.loads(bytes(blobs["meta"]))
        if meta.get("format") != PROFILE_FORMAT:
            raise ReferenceProfileError(
                f"stored profile has format {meta.get('format')!r}, this code reads "
                f"{PROFILE_FORMAT}; refit the reference"
            )
        rows = sorted(feature_rows, key=lambda r: int(r["position"]))
        specs, features, importance = [], {}, {}
        for row in rows:
            name = str(row["feature"])
            features[name], spec = _feature_from_record(
                name, str(row["kind"]), row["summary"], row["nan_count"]
            )
            specs.append(spec)
            imp = row.get("importance")
            importance[name] = 0.0 if imp is None else float(imp)
        schema = FeatureSchema(tuple(specs))
        if schema.version != header["feature_schema_version"]:
            raise ReferenceProfileError(
                f"stored feature rows hash to schema {schema.version}, header says "
                f"{header['feature_schema_version']}"
            )
        (sample,) = _npy_load(zlib.decompress(bytes(blobs["joint_sample"])), 1)
        scores = None
        if "training_scores" in blobs:
            scores = training_scores_from_blob(blobs["training_scores"])
        profile = cls(
            schema=schema,
            features=features,
            importance=importance,
            n_rows=int(header["n_rows"]),
            sample=sample,
            sample_columns=tuple(meta["sample_columns"]),
            training_scores=scores,
            seed=int(meta["seed"]),
        )
        if profile.profile_version != header["profile_version"]:
            raise ReferenceProfileError(
                f"stored profile {header['profile_version']} restores with content hash "
                f"{profile.profile_version}: the stored records are corrupt or incomplete"
            )
        return profile

    def _content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(f"format={PROFILE_FORMAT};schema={self.schema.version};n={self.n_rows}".encode())
        h.update(f";seed={self.seed}".encode())
        for name in self.schema.names:
            ref = self.features[name]
            h.update(f";{name}:{ref.nan_count}:{self.importance[name]!r}:".encode())
            h.update(ref._payload())
        h.update(json.dumps(list(self.sample_columns)).encode())
        h.update(_npy_bytes(self.sample))
        if self.training_scores is not None:
            h.update(b";scores:")
            h.update(self.training_scores._payload())
        return h.hexdigest()[:16]


# -- fitting --------------------------------------------------------------------------------
def fit_reference(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    importance: Mapping[str, float],
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    scores: np.ndarray | None = None,
) -> ReferenceProfile:
    """Fit the reference profile from the WHOLE training frame (every row, not a head).

    `frame` holds every schema column (numeric columns as numbers, NaN for missing; categorical
    ones as raw values). `importance` maps feature -> non-negative importance (features it does
    not name get 0). `scores` are the model's predicted probabilities on the training rows, kept
    for score drift. The joint sample is `sample_rows` rows drawn without replacement with
    `numpy.random.default_rng(seed)` (all rows when the frame is smaller).
    """
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise ReferenceProfileError(f"training frame lacks feature columns {missing[:10]}")
    if len(frame) == 0:
        raise ReferenceProfileError("training frame is empty: nothing to fit a reference on")
    unknown = sorted(set(importance) - set(schema.names))
    if unknown:
        raise ReferenceProfileError(f"importance names features not in the schema: {unknown[:10]}")
    bad = sorted(k for k, v in importance.items() if not np.isfinite(v) or v < 0)
    if bad:
        raise ReferenceProfileError(f"importance must be finite and >= 0; bad for {bad[:10]}")
    if sample_rows < 0:
        raise ReferenceProfileError(f"sample_rows must be >= 0, got {sample_rows}")

    features: dict[str, FeatureReference] = {}
    numeric_columns: dict[str, np.ndarray] = {}
    for spec in schema.features:
        col = frame[spec.name]
        if spec.kind == "numeric":
            try:
                values = pd.to_numeric(col, errors="raise").to_numpy(np.float64, na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise ReferenceProfileError(
                    f"numeric feature {spec.name!r} has non-numeric values: {exc}"
                ) from exc
            numeric_columns[spec.name] = values
            features[spec.name] = NumericReference.from_values(values)
        else:
            features[spec.name] = CategoricalReference.from_values(col)

    n = len(frame)
    rng = np.random.default_rng(seed)
    k = min(sample_rows, n)
    rows = np.sort(rng.choice(n, size=k, replace=False)) if k < n else np.arange(n)
    sample_columns = tuple(schema.numeric_names)
    sample = np.empty((k, len(sample_columns)), dtype=np.float64)
    for j, name in enumerate(sample_columns):
        sample[:, j] = numeric_columns[name][rows]

    training_scores = None
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if scores.size != n:
            raise ReferenceProfileError(f"scores has {scores.size} values for {n} training rows")
        if np.isnan(scores).any():
            raise ReferenceProfileError("training scores contain NaN")
        training_scores = NumericReference.from_values(scores)

    return ReferenceProfile(
        schema=schema,
        features=features,
        importance=dict(importance),
        n_rows=n,
        sample=sample,
        sample_columns=sample_columns,
        training_scores=training_scores,
        seed=seed,
    )


def _feature_from_record(
    name: str, kind: str, summary: bytes, nan_count: int
) -> tuple["NumericReference | CategoricalReference", FeatureSpec]:
    payload = zlib.decompress(bytes(summary))
    if kind == "numeric":
        values, counts = _npy_load(payload, 2)
        return NumericReference(values, counts, int(nan_count)), FeatureSpec(name)
    if kind == "categorical":
        doc = json.loads(payload)
        ref = CategoricalReference(
            tuple(doc["categories"]), np.asarray(doc["counts"]), int(nan_count)
        )
        return ref, FeatureSpec(name, "categorical", tuple(doc["schema_categories"]))
    raise ReferenceProfileError(f"stored feature {name!r} has unknown kind {kind!r}")


def feature_reference_from_record(
    name: str, kind: str, summary: bytes, nan_count: int
) -> "NumericReference | CategoricalReference":
    """One feature's summary from its stored `to_records` row, without restoring the whole
    profile (a reader showing one feature's reference distribution)."""
    return _feature_from_record(name, kind, summary, nan_count)[0]


def training_scores_from_blob(blob: bytes) -> NumericReference:
    """The training scores' summary from its stored `training_scores` blob."""
    values, counts = _npy_load(zlib.decompress(bytes(blob)), 2)
    return NumericReference(values, counts, 0)


# -- byte helpers ---------------------------------------------------------------------------
def _narrow_uint(counts: np.ndarray) -> type:
    top = int(counts.max()) if counts.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def _npy_bytes(*arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    for a in arrays:
        np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _npy_load(payload: bytes, count: int) -> list[np.ndarray]:
    buf = io.BytesIO(payload)
    try:
        out = [np.load(buf, allow_pickle=False) for _ in range(count)]
    except (ValueError, OSError) as exc:
        raise ReferenceProfileError(f"stored summary is not {count} numpy arrays: {exc}") from exc
    if buf.read(1):
        raise ReferenceProfileError("stored summary has trailing bytes")
    return out
