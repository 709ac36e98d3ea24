"""The versioned, ordered feature list of a model, and how a feature vector is packed for storage.

Pure (numpy/pandas only). Every layer shares this one description of "what a feature vector is":
training writes it next to the model, the API validates requests against it, storage packs each
prediction's features in its order, and the drift statistics align windows to it.

Packing: numeric features are stored as float64 (missing -> NaN). A categorical feature is stored
twice: its code in the training category list inside the packed vector (NaN when missing *or never
seen in training*), and its raw string value beside the vector, so that a category the model has
never seen survives storage exactly and can be reported as an unseen category.
"""

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: FeatureKind = "numeric"
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered model features. `version` is a content hash: same list, same version."""

    features: tuple[FeatureSpec, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {dupes}")
        for f in self.features:
            if f.kind not in ("numeric", "categorical"):
                raise ValueError(f"feature {f.name!r} has unknown kind {f.kind!r}")

    # -- identity -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_names(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @cached_property
    def version(self) -> str:
        canonical = json.dumps([f.to_dict() for f in self.features], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.features)

    def spec(self, name: str) -> FeatureSpec:
        return self._index[name]

    @cached_property
    def _index(self) -> dict[str, FeatureSpec]:
        # Built once per schema (spec() is called per feature per window); not a field, so
        # equality and hashing still follow `features` alone.
        return {f.name: f for f in self.features}

    # -- serialization --------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {"version": self.version, "features": [f.to_dict() for f in self.features]}, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> "FeatureSchema":
        data = json.loads(text)
        schema = cls.from_dicts(data["features"])
        if "version" in data and data["version"] != schema.version:
            raise ValueError(
                f"feature schema version mismatch: file says {data['version']}, "
                f"content hashes to {schema.version}"
            )
        return schema

    @classmethod
    def from_dicts(cls, items: Iterable[Mapping[str, Any]]) -> "FeatureSchema":
        return cls(
            tuple(
                FeatureSpec(
                    name=str(d["name"]),
                    kind=d.get("kind", "numeric"),
                    categories=tuple(str(c) for c in d.get("categories", ())),
                )
                for d in items
            )
        )

    @classmethod
    def numeric(cls, names: Sequence[str]) -> "FeatureSchema":
        return cls(tuple(FeatureSpec(n) for n in names))

    # -- packing --------------------------------------------------------------------------
    def pack(
        self, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[np.ndarray, list[dict[str, str] | None]]:
        """Rows of {feature: value} -> (float64 matrix in schema order, raw categorical values).

        Values must already be validated (numbers, None, or strings for categorical features);
        absent keys and None become NaN. The second element holds, per row, the raw string of
        each categorical feature that has a value (None when the schema has no categorical
        feature), so unseen categories are not lost.
        """
        n, p = len(rows), len(self.features)
        matrix = np.full((n, p), np.nan, dtype=np.float64)
        codes = {
            f.name: {c: float(i) for i, c in enumerate(f.categories)}
            for f in self.features
            if f.kind == "categorical"
        }
        raw: list[dict[str, str] | None] = []
        for i, row in enumerate(rows):
            cats: dict[str, str] = {}
            for j, f in enumerate(self.features):
                value = row.get(f.name)
                if value is None:
                    continue
                if f.kind == "numeric":
                    matrix[i, j] = float(value)
                elif not (isinstance(value, float) and math.isnan(value)):
                    text = category_text(value)
                    cats[f.name] = text
                    matrix[i, j] = codes[f.name].get(text, np.nan)
            raw.append(cats if codes else None)
        return matrix, raw

    def pack_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[dict[str, str] | None]]:
        """Vectorized `pack` for a DataFrame holding (at least) every schema column."""
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise KeyError(f"frame lacks feature columns: {missing[:10]}")
        matrix = np.empty((len(frame), len(self.features)), dtype=np.float64)
        cat_cols: dict[str, pd.Series] = {}
        for j, f in enumerate(self.features):
            col = frame[f.name]
            if f.kind == "numeric":
                matrix[:, j] = pd.to_numeric(col, errors="raise").to_numpy(
                    np.float64, na_value=np.nan
                )
            else:
                # An object Series: pandas 3 would infer its str dtype and turn None into NaN.
                text = pd.Series(
                    [None if _is_missing(v) else category_text(v) for v in col],
                    index=col.index,
                    dtype=object,
                )
                cat_cols[f.name] = text
                matrix[:, j] = pd.Categorical(text, categories=list(f.categories)).codes
                matrix[text.isna().to_numpy() | (matrix[:, j] < 0), j] = np.nan
        if not cat_cols:
            return matrix, [None] * len(frame)
        cat_frame = pd.DataFrame(cat_cols)
        raw = [
            {k: v for k, v in rec.items() if v is not None}
            for rec in cat_frame.to_dict(orient="records")
        ]
        return matrix, raw

    def to_frame(
        self, matrix: np.ndarray, raw: Sequence[Mapping[str, str] | None] | None = None
    ) -> pd.DataFrame:
        """Inverse of `pack`: numeric columns as float64, categorical columns as raw strings
        (object dtype, None when missing), unseen categories included."""
        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise ValueError(
                f"packed matrix has shape {matrix.shape}, schema has {len(self.features)} features"
            )
        frame = pd.DataFrame(matrix, columns=self.names, copy=False)
        for j, f in enumerate(self.features):
            if f.kind != "categorical":
                continue
            if raw is not None:
                frame[f.name] = pd.Series(
                    [None if r is None else r.get(f.name) for r in raw], dtype=object
                )
            else:
                cats = np.asarray(f.categories, dtype=object)
                col = matrix[:, j]
                values = np.full(len(col), None, dtype=object)
                ok = ~np.isnan(col)
                values[ok] = cats[col[ok].astype(np.int64)]
                frame[f.name] = values
        return frame

    def model_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Frame ready for the model: schema order, categorical columns as pandas Categorical
        with the training categories (unseen values become missing, as LightGBM expects)."""
        out = frame.loc[:, self.names].copy()
        for f in self.features:
            if f.kind == "categorical":
                text = out[f.name].map(lambda v: None if _is_missing(v) else category_text(v))
                out[f.name] = pd.Categorical(text, categories=list(f.categories))
            else:
                out[f.name] = pd.to_numeric(out[f.name], errors="raise").astype(np.float64)
        return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def category_text(value: Any) -> str:
    # 1 and 1.0 and "1" are the same category once stored as text; keep integers integral.
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
