"""Audible's marketplaces, as plain data: the CLI's ``--locale`` choices load nothing else."""

from __future__ import annotations

#: Audible marketplaces: locale → Amazon top-level domain (audible package's table)
AMAZON_LOCALES: dict[str, str] = {
    "us": "com", "uk": "co.uk", "de": "de", "fr": "fr", "ca": "ca", "it": "it",
    "au": "com.au", "in": "in", "jp": "co.jp", "es": "es", "br": "com.br",
}  # fmt: skip
