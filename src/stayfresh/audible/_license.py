"""Reading Audible's ``licenserequest`` answer (pure; the request is in :mod:`._source`)."""

from __future__ import annotations

import json

from ..jobs.sources import ContentLicense, LibraryError, safe_filename


def read_license(asin: str, body: bytes) -> ContentLicense:
    """Read Audible's ``licenserequest`` answer (the whole answer is kept as the voucher)."""
    try:
        data = json.loads(body)
        lic = data["content_license"]
        status = lic.get("status_code")
        if status != "Granted":
            raise LibraryError(f"license for {asin} not granted: {status} {lic.get('message', '')}")
        meta = lic["content_metadata"]
        url = str(meta["content_url"]["offline_url"])
        size = meta.get("content_reference", {}).get("content_size_in_bytes")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LibraryError(f"unreadable license answer for {asin}: {exc!r}") from None
    suffix = ".mp3" if lic.get("drm_type") == "Mpeg" else ".aaxc"
    return ContentLicense(
        item_id=asin, url=url, size=int(size) if size is not None else None,
        filename=safe_filename(asin) + suffix, voucher=body,
    )  # fmt: skip
