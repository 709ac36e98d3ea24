"""The reference profile: fitted once on the WHOLE training set with the model's feature list,
importances and training scores, stored in the database, and loaded back for every day."""

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from credit_drift.errors import CreditDriftError
from credit_drift.pipeline.config import PipelineConfig
from credit_drift.pipeline.memo import BoundedCache
from credit_drift.stats.reference import ReferenceProfile
from credit_drift.stats.segments import SegmentReferences, SegmentSpec

if TYPE_CHECKING:
    from credit_drift.storage.reference_profiles import StoredReference

#: The stored blob beside the profile that holds the per-segment references.
SEGMENTS_BLOB = "segments"


class ReferenceBuildError(CreditDriftError, ValueError):
    """The reference profile cannot be built or found; the message says what to do."""


@dataclass(frozen=True)
class ReferenceInfo:
    profile_version: str
    model_version: str
    n_rows: int
    n_features: int
    top_importance: pd.DataFrame
    #: Segments fitted beside the profile ("column=value"), empty when none are configured.
    segments: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class LoadedReference:
    """The active stored profile as the stats layer's `ReferenceProfile`, with the versions of
    the model and the profile it came from."""

    profile: ReferenceProfile
    profile_version: str
    model_version: str | None
    #: The stored per-segment references (`SegmentReferences.to_blob`), None when the profile
    #: was built with no segment columns.
    segments_blob: bytes | None = None

    def segment_references(self, spec: SegmentSpec) -> SegmentReferences:
        """The training reference of every segment of `spec` (SegmentError when the stored
        profile was built for other segments: re-materialize reference_profile)."""
        refs = self._segments
        if refs is None:
            raise ReferenceBuildError(
                f"the stored reference profile has no segments, and segment columns "
                f"{list(spec.columns)} are configured: re-materialize reference_profile "
                "(`credit-drift materialize --reference`) with CREDIT_DRIFT_SEGMENTS set"
            )
        refs.check_covers(spec)
        return refs

    @cached_property
    def _segments(self) -> SegmentReferences | None:
        if self.segments_blob is None:
            return None
        return SegmentReferences.from_blob(self.segments_blob)

    def by_importance(self) -> list[str]:
        """Every feature, most important first."""
        importance = self.profile.importance
        return sorted(importance, key=lambda n: -importance[n])

    def summaries(self, names) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
        """{feature: (distinct values, counts, nan_count)} as the report and plot functions take
        them (categories as an object array, even when empty)."""
        out = {}
        for name in names:
            ref = self.profile.features[name]
            if self.profile.schema.spec(name).kind == "categorical":
                out[name] = (
                    np.asarray(ref.categories, dtype=object),
                    np.asarray(ref.counts),
                    ref.nan_count,
                )
            else:
                out[name] = (np.asarray(ref.values), np.asarray(ref.counts), ref.nan_count)
        return out


def build_reference_profile(engine: Engine, config: PipelineConfig) -> ReferenceInfo:
    """Fit the reference profile on the whole training set with the model's feature list,
    importances and training scores, and store it as the active profile."""
    from credit_drift.data.loader import load_training_data
    from credit_drift.model.artifacts import load_artifacts
    from credit_drift.stats.reference import fit_reference
    from credit_drift.storage.reference_profiles import ReferenceFeatureRecord, save_reference

    artifacts = load_artifacts(config.artifacts_dir)
    data = load_training_data(
        config.training_data,
        target_column=config.target_column,
        id_column=config.id_column,
        categorical_columns=artifacts.schema.categorical_names,
        positive_label=config.positive_label,
    )
    missing = [n for n in artifacts.schema.names if n not in data.X.columns]
    if missing:
        raise ReferenceBuildError(
            f"training data {config.training_data} lacks {len(missing)} of the model's features "
            f"(e.g. {missing[:5]}): retrain with `credit-drift train` on this file"
        )
    scores = artifacts.predict_proba(data.X)
    profile = fit_reference(data.X, artifacts.schema, artifacts.importance, scores=scores)
    _, rows, blobs = profile.to_records()
    segment_names: tuple[str, ...] = ()
    if config.segments.columns:
        from credit_drift.stats.segments import fit_segment_references

        segments = fit_segment_references(
            data.X, artifacts.schema, artifacts.importance, config.segments, scores
        )
        blobs[SEGMENTS_BLOB] = segments.to_blob()
        segment_names = tuple(f"{c}={v}" for c, v in segments.profiles)
    save_reference(
        engine,
        schema=artifacts.schema,
        profile_version=profile.profile_version,
        model_version=artifacts.version,
        n_rows=profile.n_rows,
        features=[ReferenceFeatureRecord(**row) for row in rows],
        samples=blobs,
    )
    importance = (
        pd.Series(artifacts.importance, name="importance")
        .sort_values(ascending=False)
        .head(15)
        .rename_axis("feature")
        .reset_index()
    )
    return ReferenceInfo(
        profile.profile_version,
        artifacts.version,
        profile.n_rows,
        len(artifacts.schema),
        importance,
        segment_names,
    )


#: Stored profiles kept restored in memory by `load_reference_profile`, most recent first. A
#: profile of the generated 50,000-row training set restores to tens of MB; two cover a process
#: that alternates between two databases (or a new profile and the one before it).
CACHED_PROFILES = 2

_cache: "BoundedCache[LoadedReference]" = BoundedCache(CACHED_PROFILES)


def load_reference_profile(engine: Engine, *, cached: bool = True) -> LoadedReference:
    """The active stored profile; ReferenceBuildError when none is stored.

    Restoring a profile (reading its rows and blobs, decompressing and checking every summary)
    costs a few tenths of a second, and a process that runs many steps (a Dagster executor or
    celery worker, a backfill, the tests) asks for the same one again and again: with `cached`,
    a profile restored before is returned again while it is still the active one. The key is
    the database, the profile's version (a content hash), its model's, and when it was stored
    (storing the same version again, with other segments, is a new entry); the active header is
    read on every call, so a new active profile is never missed. At most `CACHED_PROFILES` are
    kept. The returned object is shared: never modify it."""
    from credit_drift.storage.reference_profiles import (
        active_reference_key,
        load_reference,
        stored_at_text,
    )

    if cached:
        head = active_reference_key(engine)
        if head is not None:
            key = (_database_key(engine), *head)
            hit = _cache.get(key)
            if hit is not None:
                return hit
    stored = load_reference(engine)
    if stored is None:
        raise ReferenceBuildError(
            "no reference profile is stored: materialize the reference_profile asset first "
            "(`credit-drift materialize --reference`, or `dagster asset materialize -m "
            "credit_drift.definitions --select reference_profile`)"
        )
    loaded = _restore(stored)
    if cached:
        key = (
            _database_key(engine),
            stored.profile_version,
            str(stored.model_version),
            stored_at_text(stored.created_at),
        )
        _cache.put(key, loaded)
    return loaded


def clear_reference_cache() -> None:
    """Forget every restored profile (the next load reads the database)."""
    _cache.clear()


def _database_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _restore(stored: "StoredReference") -> LoadedReference:
    header = {
        "profile_version": stored.profile_version,
        "feature_schema_version": stored.feature_schema_version,
        "n_rows": stored.n_rows,
    }
    profile = ReferenceProfile.from_records(
        header, [asdict(r) for r in stored.features], dict(stored.samples)
    )
    return LoadedReference(
        profile,
        stored.profile_version,
        stored.model_version,
        stored.samples.get(SEGMENTS_BLOB),
    )
