"""The notifications store methods, written once for every backend, and their rules."""

from __future__ import annotations

from ._contracts import NotifyStore
from ._sql import SQLBase


class NotifySQL(SQLBase, NotifyStore):
    """The :class:`NotifyStore` methods, for both backends."""
