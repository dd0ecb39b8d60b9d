"""Names the other stayfresh parts use from the tokens part; not a user API.

Public module names so that no part reaches into another's private modules
(``tests/test_boundaries.py``), without a compatibility promise: use
:mod:`stayfresh.tokens` instead.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
# at run time each name loads on first use (PEP 562): the CLI's valid-token path
# reads the refresh rule from here without loading the keeper or the providers
if TYPE_CHECKING:
    from ._deadline import DEFAULT_THRESHOLD_SECONDS, deadline
    from ._expiry import parse_expiry_input
    from ._import import (
        MAX_IMPORT_FILE,
        expiry_field,
        load_account_document,
        normalized_config,
        text_field,
    )
    from ._model import SECRET_CONFIG_KEYS, load_account, seconds_left, secret_prefix
    from ._providers import check_endpoint
else:
    from .._lazy import lazy_exports as _lazy_exports

    __getattr__, __dir__ = _lazy_exports(
        "stayfresh.tokens",
        module=__name__,
        where={
            "DEFAULT_THRESHOLD_SECONDS": "._deadline",
            "deadline": "._deadline",
            "parse_expiry_input": "._expiry",
            "MAX_IMPORT_FILE": "._import",
            "expiry_field": "._import",
            "load_account_document": "._import",
            "normalized_config": "._import",
            "text_field": "._import",
            "SECRET_CONFIG_KEYS": "._model",
            "secret_prefix": "._model",
            "load_account": "._model",
            "seconds_left": "._model",
            "check_endpoint": "._providers",
        },
    )

__all__ = [
    "DEFAULT_THRESHOLD_SECONDS",
    "MAX_IMPORT_FILE",
    "SECRET_CONFIG_KEYS",
    "check_endpoint",
    "deadline",
    "expiry_field",
    "load_account",
    "load_account_document",
    "normalized_config",
    "parse_expiry_input",
    "seconds_left",
    "secret_prefix",
    "text_field",
]
