"""Library sources: what a source is made of, for people who write one.

A source turns an account into page requests and reads the pages; the sync
loop (:class:`stayfresh.jobs.LibrarySync`) does the I/O with the keeper's
token. Register one with :func:`register_source` (or the
``stayfresh.library_sources`` entry point) and name it in the account's
``library_source`` setting. :class:`JsonSource` is the configurable generic
source; the Audible one is :class:`stayfresh.audible.AudibleSource`. The
helpers (:func:`read_json`, :func:`item_list`, :func:`dig`, …) are the ones
the shipped sources use to read untrusted answers safely.
"""

from __future__ import annotations

from ._license import ContentLicense, json_license, safe_filename
from ._sources import (
    JsonSource,
    LibraryError,
    LibrarySource,
    Page,
    PageRequest,
    Position,
    dig,
    int_or_none,
    item_list,
    join_names,
    read_json,
    register_source,
    source_for,
)

__all__ = [
    "ContentLicense",
    "JsonSource",
    "LibraryError",
    "LibrarySource",
    "Page",
    "PageRequest",
    "Position",
    "dig",
    "int_or_none",
    "item_list",
    "join_names",
    "json_license",
    "read_json",
    "register_source",
    "safe_filename",
    "source_for",
]
