"""The library sync store methods, written once for every backend, and their rules."""

from __future__ import annotations

from ._contracts import LibraryStore
from ._sql import SQLBase


class LibrarySQL(SQLBase, LibraryStore):
    """The :class:`LibraryStore` methods, for both backends."""
