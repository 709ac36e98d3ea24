"""The IO manager that carries each day's values between the daily assets: `base/<asset>/<day>/`
on any fsspec location (a local folder by default; `s3://`, `gs://`, `az://` in a deployment,
with the matching fsspec package and the usual credentials in the environment).

A value is stored as its `Parts` (`pipeline/parts.py`): each table as Parquet and the other
fields in a JSON manifest. Each write goes to a fresh version folder and the manifest
(`CURRENT.json`, naming the version) is written last, in one atomic step, so a reader never sees
a half-written day and two concurrent writers of one day each leave a whole version (the last
manifest wins). Older versions but one are removed after each write. Local files are private to
their owner (0600 files, 0700 folders).

A run may carry several days (the daily assets' backfill policy): an asset returns, and its
downstream assets receive, a `{day: value}` mapping, with one entry per day of the run.
"""

import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from credit_drift.pipeline.feature_drift import FeatureDriftResult
from credit_drift.pipeline.parts import Parts, Storable
from credit_drift.pipeline.performance import CohortPerformance
from credit_drift.pipeline.segments import SegmentDriftResult
from credit_drift.pipeline.window import ProductionWindow

MANIFEST = "CURRENT.json"
#: Input metadata: the input spans several days (a partition mapping) and a day never
#: materialized is left out of the mapping instead of failing the load.
ALLOW_MISSING_DAYS = "allow_missing_days"
#: The value classes this IO manager stores, by the kind their parts name.
STORED_KINDS: dict[str, type] = {
    cls.KIND: cls
    for cls in (ProductionWindow, FeatureDriftResult, CohortPerformance, SegmentDriftResult)
}
#: Version folders older than the current one and its predecessor are removed after a write; a
#: temporary manifest older than this is an abandoned write and removed too.
STALE_TEMPORARY = dt.timedelta(hours=1)


def _is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def _private(path: UPath, mode: int) -> None:
    if _is_local(path):
        os.chmod(path.path, mode)


class DailyValueIOManager(dg.UPathIOManager):
    """Stores `Storable` values (`ProductionWindow`, `FeatureDriftResult`) per asset and day."""

    extension = ""

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)

    # -- writing --------------------------------------------------------------------------
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions:
            raise TypeError(f"{context.asset_key.to_user_string()}: only daily values go here")
        if not isinstance(obj, Mapping):
            raise TypeError(
                f"{context.asset_key.to_user_string()} must return a {{day: value}} mapping"
            )
        paths = self._get_paths_for_partitions(context)
        if set(obj) != set(paths):
            raise ValueError(
                f"{context.asset_key.to_user_string()} returned days {sorted(obj)} for a run of "
                f"{sorted(paths)}"
            )
        for day, value in obj.items():
            self.dump_to_path(context, value, paths[day])
        context.add_output_metadata({"path": dg.MetadataValue.path(str(self._base_of(paths)))})

    def _base_of(self, paths: Mapping[str, UPath]) -> UPath:
        return next(iter(paths.values())).parent

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if not isinstance(obj, Storable):
            raise TypeError(f"cannot store a {type(obj).__name__}: it has no to_parts()")
        write_parts(obj.to_parts(), path)

    # -- reading --------------------------------------------------------------------------
    def load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_partitions:
            raise TypeError(f"{context.asset_key.to_user_string()}: only daily values go here")
        paths = self._get_paths_for_partitions(context)
        if (context.definition_metadata or {}).get(ALLOW_MISSING_DAYS):
            paths = {day: path for day, path in paths.items() if (path / MANIFEST).exists()}
        return {day: self.load_from_path(context, path) for day, path in paths.items()}

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        return from_parts(read_parts(path))


def from_parts(parts: Parts) -> Storable:
    """The value that `parts` were made from."""
    try:
        cls = STORED_KINDS[parts.kind]
    except KeyError:
        raise ValueError(f"unknown stored value kind {parts.kind!r}") from None
    return cls.from_parts(parts)


def _version_name() -> str:
    return f"v{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def write_parts(parts: Parts, folder: UPath) -> str:
    """Write a new version of `parts` under `folder` and make it current. Returns the version."""
    folder.mkdir(parents=True, exist_ok=True)
    _private(folder, 0o700)
    version = _version_name()
    vdir = folder / version
    vdir.mkdir(parents=True, exist_ok=True)
    _private(vdir, 0o700)
    for name, frame in parts.frames.items():
        target = vdir / f"{name}.parquet"
        with target.open("wb") as handle:
            frame.to_parquet(handle, index=False)
        _private(target, 0o600)
    manifest = {
        "version": version,
        "kind": parts.kind,
        "frames": sorted(parts.frames),
        "fields": parts.fields,
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    payload = json.dumps(manifest, allow_nan=False).encode()
    current = folder / MANIFEST
    if _is_local(folder):
        # A rename is atomic on a local filesystem; an object store's single PUT is already.
        tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
        with tmp.open("wb") as handle:
            handle.write(payload)
        _private(tmp, 0o600)
        os.replace(tmp.path, current.path)
    else:
        with current.open("wb") as handle:
            handle.write(payload)
    _remove_stale(folder, keep={version})
    return version


def read_parts(folder: UPath) -> Parts:
    """The current version under `folder`; FileNotFoundError naming the folder when none."""
    current = folder / MANIFEST
    if not current.exists():
        raise FileNotFoundError(
            f"no stored value at {folder}: materialize that asset's partition first"
        )
    manifest = json.loads(current.read_bytes())
    vdir = folder / manifest["version"]
    frames = {}
    for name in manifest["frames"]:
        with (vdir / f"{name}.parquet").open("rb") as handle:
            frames[name] = pd.read_parquet(handle)
    return Parts(manifest["kind"], frames, manifest["fields"])


def _written_at(version: str) -> dt.datetime:
    return dt.datetime.strptime(version[1:22], "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC)


def _remove_stale(folder: UPath, keep: set[str]) -> None:
    """Remove version folders but the newest two (the current one, and the previous one that a
    reader may still be reading) once they are older than STALE_TEMPORARY (a slow concurrent
    writer may be about to make one current), and abandoned temporary manifests."""
    now = dt.datetime.now(dt.UTC)
    versions = sorted(p.name for p in folder.iterdir() if p.name.startswith("v"))
    for name in versions[:-2]:
        if name not in keep and now - _written_at(name) > STALE_TEMPORARY:
            (folder / name).fs.rm((folder / name).path, recursive=True)
    if _is_local(folder):
        for p in folder.iterdir():
            if p.name.startswith(f".{MANIFEST}.") and p.name.endswith(".tmp"):
                age = now - dt.datetime.fromtimestamp(os.path.getmtime(p.path), dt.UTC)
                if age > STALE_TEMPORARY:
                    p.unlink(missing_ok=True)


class DailyValueIOManagerFactory(dg.ConfigurableIOManagerFactory):
    """Where the daily assets keep each day's values: a local folder or an fsspec URL that every
    process running the assets can reach (`s3://bucket/prefix` in a deployment)."""

    base: str

    def create_io_manager(self, context) -> DailyValueIOManager:
        return DailyValueIOManager(base_path=UPath(self.base))
