"""The trained model as an object (`ModelArtifacts`: score, decide) and as a directory of files.

Files of an artifacts directory (all text, written atomically by `save_artifacts`):

- `model.txt`: the LightGBM booster in its native text format. LightGBM rejects feature names
  with JSON characters (`ORGANIZATION_TYPE_Trade: type 7`), so the booster knows the features
  under sanitized names (`lightgbm_feature_names`); `feature_schema.json` keeps the real ones and
  the order, which is all that scoring uses.
- `feature_schema.json`: `FeatureSchema.to_json()` (ordered features, categories, schema version).
- `threshold.json`: `{"threshold", "decision_rule", "chosen_on_held_out": ThresholdReport}`.
  The decision is REFUSED when probability >= threshold.
- `metrics.json`: training metrics (floats: auc, threshold, cost, refusal_rate, n_train, ...).
- `feature_importance.json`: `{"importance_type": "gain", "normalized": true, "importance":
  {feature: share}}`, every schema feature in schema order, shares summing to 1 (all 0 only for
  a model without a single split).
- `holdout.json` (optional; models trained before it have none): the held-out split's raw
  probabilities and 0/1 outcomes, `{"probability": [...], "outcome": [...]}`, which the
  label-free performance estimate calibrates on and takes its uncertainty band from. Not part of
  the version: it describes how the model was validated, not what it computes.
- `model_version.json`: `{"version", "feature_schema_version", "lightgbm_version"}`, a record
  for people. The version itself is always recomputed from content: the first 12 hex digits of
  sha256 over model.txt, feature_schema.json and threshold.json, so a hand-edited threshold is a
  new model version.

Scoring (`predict_proba`) builds a float64 matrix in schema order, categorical features as their
code in the training category list (NaN when missing or never seen in training), which is exactly
what LightGBM does with the pandas Categorical columns of `FeatureSchema.model_frame` (and what
`FeatureSchema.pack` stores), without the per-call cost of a 419-column DataFrame conversion.
"""

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from credit_drift.errors import CreditDriftError
from credit_drift.features import FeatureSchema
from credit_drift.model.single_row import SingleRowPredictor

log = logging.getLogger(__name__)

REFUSED = "REFUSED"
APPROVED = "APPROVED"
DECISION_RULE = f"{REFUSED} if probability >= threshold else {APPROVED}"

MODEL_FILE = "model.txt"
SCHEMA_FILE = "feature_schema.json"
THRESHOLD_FILE = "threshold.json"
METRICS_FILE = "metrics.json"
IMPORTANCE_FILE = "feature_importance.json"
HOLDOUT_FILE = "holdout.json"
VERSION_FILE = "model_version.json"
# The files whose content defines the model version, in hashing order.
VERSIONED_FILES = (MODEL_FILE, SCHEMA_FILE, THRESHOLD_FILE)
VERSION_LENGTH = 12


class ArtifactsError(CreditDriftError, ValueError):
    """Model artifacts are missing, corrupt or inconsistent; the message names the file."""


@dataclass(frozen=True)
class ThresholdReport:
    """How the decision threshold was chosen on the held-out split: the candidate minimizing
    cost_fn * n_fn + cost_fp * n_fp over `grid` (a description of the candidates)."""

    threshold: float
    cost: float
    cost_fn: float
    cost_fp: float
    n_fn: int
    n_fp: int
    grid: str
    n_tp: int = 0
    n_tn: int = 0
    n_candidates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ThresholdReport":
        return cls(
            threshold=float(data["threshold"]),
            cost=float(data["cost"]),
            cost_fn=float(data["cost_fn"]),
            cost_fp=float(data["cost_fp"]),
            n_fn=int(data["n_fn"]),
            n_fp=int(data["n_fp"]),
            grid=str(data["grid"]),
            n_tp=int(data.get("n_tp", 0)),
            n_tn=int(data.get("n_tn", 0)),
            n_candidates=int(data.get("n_candidates", 0)),
        )


@dataclass(frozen=True, eq=False)
class HoldOut:
    """The held-out split as the model scored it: raw probabilities and 0/1 outcomes."""

    probability: np.ndarray
    outcome: np.ndarray

    def __post_init__(self) -> None:
        p = np.asarray(self.probability, dtype=np.float64)
        y = np.asarray(self.outcome)
        if p.ndim != 1 or p.shape != y.shape or len(p) == 0:
            raise ValueError(f"probability {p.shape} and outcome {y.shape}: equal, non-empty 1-D")
        if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
            raise ValueError("probability must be finite and within [0, 1]")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("outcome must be 0 or 1")
        object.__setattr__(self, "probability", p)
        object.__setattr__(self, "outcome", y.astype(np.int8))

    def to_json(self) -> str:
        return json.dumps(
            {"probability": self.probability.tolist(), "outcome": self.outcome.tolist()}
        )

    @classmethod
    def from_json(cls, text: str) -> "HoldOut":
        data = json.loads(text)
        return cls(np.asarray(data["probability"]), np.asarray(data["outcome"]))


def lightgbm_feature_names(schema: FeatureSchema) -> list[str]:
    """The names the booster uses: non-alphanumeric characters replaced by `_`, made unique."""
    names: list[str] = []
    seen: set[str] = set()
    for j, name in enumerate(schema.names):
        clean = re.sub(r"[^0-9A-Za-z_]", "_", name) or f"f{j}"
        if clean in seen:
            clean = f"{clean}__{j}"
        seen.add(clean)
        names.append(clean)
    return names


def model_matrix(
    schema: FeatureSchema, frame: pd.DataFrame, names_index: pd.Index | None = None
) -> np.ndarray:
    """float64 (n, p) matrix in schema order from raw feature values: numeric columns as numbers
    (None/NaN missing), categorical columns as codes in the training categories (NaN if missing
    or unseen), via `FeatureSchema.model_frame`. Raises ValueError naming the bad column.
    `names_index` (`pd.Index(schema.names)`, cached by the caller) saves ~0.2 ms per call."""
    # One-row scoring is sensitive to overhead: with 419 columns `frame.loc[:, names]` costs
    # ~0.5 ms and building an Index of the names ~0.2 ms; with a prebuilt Index, ~10 us.
    names = schema.names
    index = pd.Index(names) if names_index is None else names_index
    if frame.columns.equals(index):
        positions = np.arange(len(names))
    else:
        try:
            positions = frame.columns.get_indexer(index)
        except pd.errors.InvalidIndexError as exc:
            raise ValueError("frame has duplicated column names") from exc
    if (positions < 0).any():
        missing = [n for n, i in zip(names, positions, strict=True) if i < 0]
        raise ValueError(f"frame lacks {len(missing)} model feature(s): {missing[:10]}")
    if not schema.categorical_names:
        try:  # fast path: convert the block once, then pick the columns by position
            return frame.to_numpy(dtype=np.float64, na_value=np.nan)[:, positions]
        except (TypeError, ValueError):
            pass  # a non-numeric column somewhere: the path below names it if it is a feature
    try:
        model_frame = schema.model_frame(frame)
    except (TypeError, ValueError) as exc:
        for spec in schema.features:
            if spec.kind == "numeric":
                try:
                    pd.to_numeric(frame[spec.name], errors="raise")
                except (TypeError, ValueError):
                    raise ValueError(f"feature {spec.name!r} is not numeric: {exc}") from exc
        raise
    matrix = np.empty((len(frame), len(schema)), dtype=np.float64)
    for j, spec in enumerate(schema.features):
        col = model_frame[spec.name]
        if spec.kind == "categorical":
            codes = col.cat.codes.to_numpy()
            matrix[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            matrix[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return matrix


@dataclass(frozen=True, eq=False)
class ModelArtifacts:
    """A trained model with everything needed to score, decide and monitor it.

    Build with `ModelArtifacts.create` (computes the version) or `load_artifacts`."""

    booster: lgb.Booster
    schema: FeatureSchema
    threshold: float
    threshold_report: ThresholdReport
    metrics: dict[str, float]
    version: str
    importance: dict[str, float]
    model_text: str = field(default="", repr=False)
    #: The held-out split's probabilities and outcomes (None: trained before they were kept).
    holdout: HoldOut | None = field(default=None, repr=False)
    _names_index: pd.Index = field(init=False, repr=False)
    # LightGBM's fast path for one row on one thread, made on first use.
    _single_row: SingleRowPredictor | None = field(
        init=False, default=None, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names_index", pd.Index(self.schema.names))

    @classmethod
    def create(
        cls,
        booster: lgb.Booster,
        schema: FeatureSchema,
        threshold_report: ThresholdReport,
        metrics: dict[str, float],
        importance: dict[str, float],
        threshold: float | None = None,
        model_text: str | None = None,
        holdout: HoldOut | None = None,
    ) -> "ModelArtifacts":
        threshold = threshold_report.threshold if threshold is None else float(threshold)
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        text = booster.model_to_string() if model_text is None else model_text
        draft = cls(
            booster=booster,
            schema=schema,
            threshold=threshold,
            threshold_report=threshold_report,
            metrics={k: float(v) for k, v in metrics.items()},
            version="",
            importance={n: float(importance.get(n, 0.0)) for n in schema.names},
            model_text=text,
            holdout=holdout,
        )
        return dataclasses.replace(draft, version=_version(draft.file_texts()))

    def with_threshold(self, threshold: float) -> "ModelArtifacts":
        """The same model operated at another threshold (a new version)."""
        return ModelArtifacts.create(
            self.booster,
            self.schema,
            self.threshold_report,
            self.metrics,
            self.importance,
            threshold=threshold,
            model_text=self.model_text,
            holdout=self.holdout,
        )

    # -- scoring ----------------------------------------------------------------------------
    def predict_proba(self, frame: pd.DataFrame, num_threads: int = 0) -> np.ndarray:
        """Probability of default, shape (n,), for raw feature values (any column order; extra
        columns ignored). Pass num_threads=1 for single rows (thread start-up dominates)."""
        matrix = model_matrix(self.schema, frame, self._names_index)
        return self.predict_matrix(matrix, num_threads=num_threads)

    def predict_matrix(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Probability of default for a matrix already in `model_matrix` / `FeatureSchema.pack`
        form (schema order, categorical codes)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.schema):
            raise ValueError(
                f"matrix has shape {matrix.shape}, the model expects (n, {len(self.schema)})"
            )
        if matrix.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        if matrix.shape[0] == 1 and num_threads == 1:
            # One application (the API's POST /predict): bit-identical, without the per-call
            # set-up of Booster.predict (see `model.single_row`).
            if self._single_row is None:
                object.__setattr__(self, "_single_row", SingleRowPredictor(self.booster))
            row = np.ascontiguousarray(matrix[0])
            return np.array([self._single_row.predict(row)], dtype=np.float64)
        return np.asarray(self.booster.predict(matrix, num_threads=num_threads), dtype=np.float64)

    def contributions(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Per-row feature contributions to the RAW score (log-odds), shape (n, p + 1): LightGBM's
        `pred_contrib=True` (TreeSHAP), the last column the model's expected value; each row sums
        to that row's raw margin. `matrix` as for `predict_matrix`."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.schema):
            raise ValueError(
                f"matrix has shape {matrix.shape}, the model expects (n, {len(self.schema)})"
            )
        if matrix.shape[0] == 0:
            return np.empty((0, len(self.schema) + 1), dtype=np.float64)
        out = self.booster.predict(matrix, pred_contrib=True, num_threads=num_threads)
        return np.asarray(out, dtype=np.float64)

    def decide(self, proba: np.ndarray | float) -> np.ndarray:
        return np.where(np.asarray(proba, dtype=np.float64) >= self.threshold, REFUSED, APPROVED)

    # -- files --------------------------------------------------------------------------------
    def file_texts(self) -> dict[str, str]:
        """The content of every artifact file, as `save_artifacts` writes it."""
        threshold = {
            "threshold": self.threshold,
            "decision_rule": DECISION_RULE,
            "chosen_on_held_out": self.threshold_report.to_dict(),
        }
        importance = {
            "importance_type": "gain",
            "normalized": True,
            "importance": {n: self.importance[n] for n in self.schema.names},
        }
        texts = {
            MODEL_FILE: self.model_text,
            SCHEMA_FILE: self.schema.to_json(),
            THRESHOLD_FILE: json.dumps(threshold, indent=1),
            METRICS_FILE: json.dumps(self.metrics, indent=1),
            IMPORTANCE_FILE: json.dumps(importance, indent=1),
        }
        if self.holdout is not None:
            texts[HOLDOUT_FILE] = self.holdout.to_json()
        return texts


def _version(texts: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in VERSIONED_FILES:
        data = texts[name].encode()
        # Length-prefixed so that moving bytes between files cannot keep the same hash.
        digest.update(f"{name}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()[:VERSION_LENGTH]


def save_artifacts(artifacts: ModelArtifacts, directory: str | os.PathLike) -> Path:
    """Write every artifact file into `directory` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    texts = artifacts.file_texts()
    texts[VERSION_FILE] = json.dumps(
        {
            "version": artifacts.version,
            "feature_schema_version": artifacts.schema.version,
            "lightgbm_version": lgb.__version__,
            "versioned_files": list(VERSIONED_FILES),
        },
        indent=1,
    )
    if artifacts.holdout is None:  # a stale hold-out would describe another model
        (directory / HOLDOUT_FILE).unlink(missing_ok=True)
    for name, text in texts.items():  # model_version.json last: it vouches for the others
        tmp = directory / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, directory / name)
    return directory


def load_artifacts(directory: str | os.PathLike) -> ModelArtifacts:
    """Read an artifacts directory; `ArtifactsError` names the missing or corrupt file."""
    directory = Path(directory)
    hint = "run `credit-drift train` to (re)create the model artifacts"
    if not directory.is_dir():
        raise ArtifactsError(f"artifacts directory {directory} does not exist: {hint}")
    texts = {}
    for name in (MODEL_FILE, SCHEMA_FILE, THRESHOLD_FILE, METRICS_FILE, IMPORTANCE_FILE):
        path = directory / name
        if not path.is_file():
            raise ArtifactsError(f"{path} is missing: {hint}")
        texts[name] = path.read_text(encoding="utf-8")

    def corrupt(name: str, why: str) -> ArtifactsError:
        return ArtifactsError(f"{directory / name} is corrupt ({why}): {hint}")

    def parse(name: str) -> Any:
        try:
            return json.loads(texts[name])
        except json.JSONDecodeError as exc:
            raise corrupt(name, f"not valid JSON: {exc}") from exc

    try:
        schema = FeatureSchema.from_json(texts[SCHEMA_FILE])
    except (ValueError, KeyError, TypeError) as exc:
        raise corrupt(SCHEMA_FILE, str(exc)) from exc
    try:
        booster = lgb.Booster(model_str=texts[MODEL_FILE])
    except (lgb.basic.LightGBMError, ValueError) as exc:
        raise corrupt(MODEL_FILE, f"LightGBM cannot read it: {exc}") from exc
    if booster.feature_name() != lightgbm_feature_names(schema):
        raise ArtifactsError(
            f"{directory / MODEL_FILE} ({booster.num_feature()} features) and "
            f"{directory / SCHEMA_FILE} ({len(schema)} features) describe different feature "
            f"lists: {hint}"
        )
    raw_threshold = parse(THRESHOLD_FILE)
    try:
        threshold = float(raw_threshold["threshold"])
        report = ThresholdReport.from_dict(raw_threshold["chosen_on_held_out"])
    except (KeyError, TypeError, ValueError) as exc:
        raise corrupt(THRESHOLD_FILE, f"bad or missing field {exc}") from exc
    if not math.isfinite(threshold):
        raise corrupt(THRESHOLD_FILE, f"threshold {threshold} is not finite")
    try:
        metrics = {str(k): float(v) for k, v in parse(METRICS_FILE).items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise corrupt(METRICS_FILE, "expected an object of numbers") from exc
    try:
        importance = {str(k): float(v) for k, v in parse(IMPORTANCE_FILE)["importance"].items()}
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise corrupt(IMPORTANCE_FILE, "expected {'importance': {feature: number}}") from exc
    if set(importance) != set(schema.names):
        raise corrupt(IMPORTANCE_FILE, "its features differ from feature_schema.json")

    holdout = None
    if (directory / HOLDOUT_FILE).is_file():
        try:
            holdout = HoldOut.from_json((directory / HOLDOUT_FILE).read_text(encoding="utf-8"))
        except (KeyError, TypeError, ValueError) as exc:
            raise corrupt(HOLDOUT_FILE, str(exc)) from exc
    artifacts = ModelArtifacts.create(
        booster,
        schema,
        report,
        metrics,
        importance,
        threshold=threshold,
        model_text=texts[MODEL_FILE],
        holdout=holdout,
    )
    recorded = _recorded_version(directory / VERSION_FILE)
    if recorded is not None and recorded != artifacts.version:
        log.warning(
            "%s says version %s but the files hash to %s (edited after training?); using %s",
            directory / VERSION_FILE,
            recorded,
            artifacts.version,
            artifacts.version,
        )
    return artifacts


def _recorded_version(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
