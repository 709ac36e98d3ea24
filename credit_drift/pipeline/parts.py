"""How the pipeline's values are split for storage: tables as DataFrames (Parquet) and the rest
as JSON fields. The IO manager (`defs/io_manager.py`) writes and reads `Parts`; the value
classes (`Storable`) say what their parts are, so the storage format stays next to the class it
stores.
"""

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd


@dataclass(frozen=True, eq=False)
class Parts:
    """kind: the value's class name; frames: named tables; fields: JSON-serializable values."""

    kind: str
    frames: dict[str, pd.DataFrame]
    fields: dict[str, Any]


@runtime_checkable
class Storable(Protocol):
    KIND: ClassVar[str]

    def to_parts(self) -> Parts: ...

    @classmethod
    def from_parts(cls, parts: Parts) -> "Storable": ...
