"""Names the other stayfresh parts use from the tokens part; not a user API.

Public module names so that no part reaches into another's private modules
(``tests/test_boundaries.py``), without a compatibility promise: use
:mod:`stayfresh.tokens` instead.
"""

from __future__ import annotations

from ._expiry import parse_expiry_input
from ._import import (
    MAX_IMPORT_FILE,
    expiry_field,
    load_account_document,
    normalized_config,
    text_field,
)
from ._model import SECRET_CONFIG_KEYS, secret_prefix
from ._providers import check_endpoint

__all__ = [
    "MAX_IMPORT_FILE",
    "SECRET_CONFIG_KEYS",
    "check_endpoint",
    "expiry_field",
    "load_account_document",
    "normalized_config",
    "parse_expiry_input",
    "secret_prefix",
    "text_field",
]
