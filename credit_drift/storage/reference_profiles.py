"""The stored reference profile: its header (`reference_profiles`), one opaque summary per
feature (`training_reference`) and named opaque samples (`reference_samples`).

Storage treats the summaries and samples as bytes made by the stats layer; it only checks that
every feature of the schema is summarized exactly once. At most one profile is active.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from credit_drift.features import FeatureSchema
from credit_drift.storage.predictions import register_feature_schema
from credit_drift.storage.schema import reference_profiles, reference_samples, training_reference
from credit_drift.storage.sql import plain, utc_now


@dataclass(frozen=True)
class ReferenceFeatureRecord:
    """One feature of a stored reference profile; `summary` is opaque (stats layer bytes)."""

    feature: str
    position: int
    kind: str
    n_rows: int
    nan_count: int
    importance: float | None
    summary: bytes


@dataclass(frozen=True)
class StoredReference:
    """A reference profile as stored: header, per-feature records in schema order, blobs."""

    profile_version: str
    model_version: str | None
    feature_schema_version: str
    n_rows: int
    created_at: dt.datetime
    is_active: bool
    features: tuple[ReferenceFeatureRecord, ...]
    samples: Mapping[str, bytes] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        """The `reference_profiles` row as a dict (what `ReferenceProfile.from_records` takes)."""
        return {
            "profile_version": self.profile_version,
            "model_version": self.model_version,
            "feature_schema_version": self.feature_schema_version,
            "n_rows": self.n_rows,
            "created_at": self.created_at,
            "is_active": self.is_active,
        }

    def feature_rows(self) -> list[dict[str, Any]]:
        """The per-feature rows as dicts, in schema order."""
        return [asdict(r) for r in self.features]


def _as_record(item: ReferenceFeatureRecord | Mapping[str, Any]) -> ReferenceFeatureRecord:
    if isinstance(item, ReferenceFeatureRecord):
        return item
    missing = [f.name for f in fields(ReferenceFeatureRecord) if f.name not in item]
    if missing:
        raise ValueError(f"reference feature row {item.get('feature')!r} lacks {missing}")
    return ReferenceFeatureRecord(**{f.name: item[f.name] for f in fields(ReferenceFeatureRecord)})


def _check_reference_features(
    schema: FeatureSchema, features: Sequence[ReferenceFeatureRecord]
) -> None:
    seen: set[str] = set()
    positions = {name: j for j, name in enumerate(schema.names)}
    for rec in features:
        if rec.feature in seen:
            raise ValueError(f"reference profile summarizes feature {rec.feature!r} twice")
        seen.add(rec.feature)
        j = positions.get(rec.feature)
        if j is None:
            raise ValueError(
                f"reference feature {rec.feature!r} is not in feature schema {schema.version}"
            )
        spec = schema.features[j]
        if rec.position != j or rec.kind != spec.kind:
            raise ValueError(
                f"reference feature {rec.feature!r} has position {rec.position} / kind "
                f"{rec.kind!r}; schema {schema.version} says {j} / {spec.kind!r}"
            )
        if not isinstance(rec.summary, bytes | bytearray | memoryview):
            raise TypeError(
                f"summary of {rec.feature!r} must be bytes, not {type(rec.summary).__name__}"
            )
    missing = [n for n in positions if n not in seen]
    if missing:
        raise ValueError(f"reference profile lacks {len(missing)} schema features: {missing[:10]}")


def save_reference(
    engine: Engine,
    *,
    schema: FeatureSchema,
    profile_version: str,
    model_version: str | None,
    n_rows: int,
    features: Sequence[ReferenceFeatureRecord | Mapping[str, Any]],
    samples: Mapping[str, bytes] | None = None,
    activate: bool = True,
) -> None:
    """Store a reference profile (replacing a stored one of the same version) in one
    transaction; with `activate`, it becomes the one active profile.

    `features` are ReferenceFeatureRecord objects or mappings with the same keys (the
    `feature_rows` of `ReferenceProfile.to_records()`); `samples` are named opaque blobs.
    """
    features = [_as_record(f) for f in features]
    _check_reference_features(schema, features)
    now = utc_now()
    with engine.begin() as conn:
        register_feature_schema(conn, schema)
        conn.execute(
            sa.delete(reference_profiles).where(
                reference_profiles.c.profile_version == profile_version
            )
        )
        if activate:
            # Deactivate first: the partial unique index allows one active row at any time.
            conn.execute(
                sa.update(reference_profiles)
                .where(reference_profiles.c.is_active)
                .values(is_active=False)
            )
        conn.execute(
            reference_profiles.insert().values(
                profile_version=profile_version,
                model_version=model_version,
                feature_schema_version=schema.version,
                n_rows=int(n_rows),
                created_at=now,
                is_active=activate,
            )
        )
        conn.execute(
            training_reference.insert(),
            [
                {
                    "profile_version": profile_version,
                    "feature": r.feature,
                    "position": int(r.position),
                    "kind": r.kind,
                    "n_rows": int(r.n_rows),
                    "nan_count": int(r.nan_count),
                    "importance": plain(r.importance),
                    "summary": bytes(r.summary),
                    "created_at": now,
                }
                for r in features
            ],
        )
        if samples:
            conn.execute(
                reference_samples.insert(),
                [
                    {"profile_version": profile_version, "name": name, "data": bytes(data)}
                    for name, data in samples.items()
                ],
            )


def activate_reference(engine: Engine, profile_version: str) -> None:
    """Make a stored profile the active one; LookupError when it is not stored."""
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(reference_profiles.c.profile_version).where(
                reference_profiles.c.profile_version == profile_version
            )
        ).first()
        if exists is None:
            raise LookupError(f"reference profile {profile_version!r} is not stored")
        conn.execute(
            sa.update(reference_profiles)
            .where(
                reference_profiles.c.is_active,
                reference_profiles.c.profile_version != profile_version,
            )
            .values(is_active=False)
        )
        conn.execute(
            sa.update(reference_profiles)
            .where(reference_profiles.c.profile_version == profile_version)
            .values(is_active=True)
        )


def active_reference_key(engine: Engine) -> tuple[str, str, str] | None:
    """(profile_version, model_version, created_at as ISO text) of the active profile, None when
    none is active: one small query, to tell whether a profile restored earlier is still the
    active one without reading its summaries."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                reference_profiles.c.profile_version,
                reference_profiles.c.model_version,
                reference_profiles.c.created_at,
            ).where(reference_profiles.c.is_active)
        ).first()
    if row is None:
        return None
    return row.profile_version, str(row.model_version), stored_at_text(row.created_at)


def stored_at_text(created_at: Any) -> str:
    """A stored `created_at` as text, the same for the value whichever query read it."""
    return created_at.isoformat() if hasattr(created_at, "isoformat") else str(created_at)


def load_reference(engine: Engine, profile_version: str | None = None) -> StoredReference | None:
    """The active profile (None when no profile is active), or the named one (LookupError when
    it is not stored)."""
    with engine.connect() as conn:
        stmt = sa.select(reference_profiles)
        if profile_version is None:
            stmt = stmt.where(reference_profiles.c.is_active)
        else:
            stmt = stmt.where(reference_profiles.c.profile_version == profile_version)
        header = conn.execute(stmt).mappings().first()
        if header is None:
            if profile_version is not None:
                raise LookupError(f"reference profile {profile_version!r} is not stored")
            return None
        version = header["profile_version"]
        rows = conn.execute(
            sa.select(training_reference)
            .where(training_reference.c.profile_version == version)
            .order_by(training_reference.c.position)
        ).mappings()
        features = tuple(
            ReferenceFeatureRecord(
                feature=r["feature"],
                position=r["position"],
                kind=r["kind"],
                n_rows=r["n_rows"],
                nan_count=r["nan_count"],
                importance=r["importance"],
                summary=bytes(r["summary"]),
            )
            for r in rows
        )
        samples = {
            name: bytes(data)
            for name, data in conn.execute(
                sa.select(reference_samples.c.name, reference_samples.c.data).where(
                    reference_samples.c.profile_version == version
                )
            )
        }
    return StoredReference(
        profile_version=version,
        model_version=header["model_version"],
        feature_schema_version=header["feature_schema_version"],
        n_rows=header["n_rows"],
        created_at=header["created_at"],
        is_active=header["is_active"],
        features=features,
        samples=samples,
    )


def list_references(engine: Engine) -> pd.DataFrame:
    """Headers of every stored profile, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(reference_profiles).order_by(reference_profiles.c.created_at.desc())
        ).all()
    return pd.DataFrame.from_records(rows, columns=[c.name for c in reference_profiles.columns])
