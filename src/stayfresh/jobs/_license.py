"""Content licenses: where an item's file is and what must be kept beside it.

Pure reading of what the APIs answer, apart from the I/O in
:mod:`._download`. The generic JSON source has no license call, only a
``download_url`` template; a source with a license call (Audible's
``licenserequest``, in :mod:`stayfresh.audible`) returns a
:class:`ContentLicense` from :meth:`~._sources.LibrarySource.content_license`.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx2

from ..errors import ConfigError
from ..tokens import Account


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContentLicense:
    """Where an item's file is, how big it is, and what to keep beside it."""

    item_id: str
    url: str
    size: int | None
    filename: str
    #: send the account's token with the file request (same host as the API)
    authenticated: bool = False
    #: the license answer, saved as ``<file>.voucher`` (Audible: the key to play it)
    voucher: bytes | None = None

    def __repr__(self) -> str:  # the URL is signed and the voucher holds keys
        return f"ContentLicense(item_id={self.item_id!r}, size={self.size}, filename={self.filename!r})"


def json_license(account: Account, item_id: str) -> ContentLicense:
    """The generic source's file: ``download_url`` with ``{item_id}``; no license call.

    The account's token goes along only when the file is on the library API's host.
    """
    cfg = account.config.get("library")
    template = cfg.get("download_url") if isinstance(cfg, Mapping) else None
    if not template:
        raise ConfigError(
            f"account {account.name!r} has no download URL: "
            f"`stayfresh library configure {account.name} --download-url …`"
        )
    url = str(template).replace("{item_id}", quote(item_id, safe=""))
    library = urlsplit(str(cfg.get("url", "")) if isinstance(cfg, Mapping) else "")
    same_host = urlsplit(url).netloc == library.netloc
    suffix = Path(urlsplit(url).path).suffix or ".bin"
    return ContentLicense(
        item_id=item_id, url=url, size=None, filename=safe_filename(item_id) + suffix,
        authenticated=same_host,
    )  # fmt: skip


def content_range(headers: httpx2.Headers) -> tuple[int | None, int | None]:
    """(first byte, whole size) from ``Content-Range: bytes FIRST-LAST/SIZE`` (or ``*/SIZE``).

    None for a part that is absent or unreadable.
    """
    value = headers.get("content-range", "").strip()
    unit, _, spec = value.partition(" ")
    if unit.lower() != "bytes" or "/" not in spec:
        return None, None
    span, _, size = spec.rpartition("/")
    first = span.split("-", 1)[0].strip()
    return (
        int(first) if first.isdigit() else None,
        int(size.strip()) if size.strip().isdigit() else None,
    )


def announced_total(headers: httpx2.Headers, status: int) -> int | None:
    """The whole file's size from ``Content-Range`` (206/416) or ``Content-Length`` (200)."""
    if "/" in headers.get("content-range", ""):
        return content_range(headers)[1]
    length = headers.get("content-length")
    if status == 200 and length and length.isdigit():
        return int(length)
    return None


def announced_sha256(headers: httpx2.Headers) -> bytes | None:
    """The whole file's SHA-256 if the server gives one, else None.

    ``Repr-Digest: sha-256=:BASE64:`` (RFC 9530) or the older ``Digest:
    SHA-256=BASE64`` (RFC 3230). Both digest the whole representation, not
    the bytes of one range, so a resumed download checks the assembled file.
    Other algorithms are ignored (sha-256 is the one both RFCs require).
    """
    for name, pattern in (("repr-digest", _REPR_DIGEST), ("digest", _LEGACY_DIGEST)):
        found = pattern.search(headers.get(name, ""))
        if found:
            try:
                digest = base64.b64decode(found.group(1), validate=True)
            except ValueError:
                continue
            if len(digest) == 32:
                return digest
    return None


_REPR_DIGEST = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):", re.IGNORECASE)
_LEGACY_DIGEST = re.compile(r"(?:^|,)\s*sha-256\s*=\s*([A-Za-z0-9+/=]+)", re.IGNORECASE)


def safe_filename(name: str) -> str:
    """A file name from an item id: no separators, no leading dot."""
    cleaned = "".join(c if c.isalnum() or c in "-_.@+" else "_" for c in name).lstrip(".")
    return cleaned or "item"
