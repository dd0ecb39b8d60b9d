"""The Audible client: Amazon's token exchange, its library source, its content licenses.

Out of the generic core: :mod:`stayfresh.jobs` syncs and downloads any
library through a :class:`~stayfresh.jobs.sources.LibrarySource`, and
Audible is one of them, loaded by name when an account uses it (Amazon
accounts do by default: ``library_source = audible``). Likewise the token
provider registry loads :class:`AmazonProvider` when an account names the
``amazon`` provider (it is also re-exported as
:class:`stayfresh.tokens.AmazonProvider`), and ``stayfresh account import``
loads :func:`read_auth_file` only for an auth file of the ``audible`` package.

Each name loads its own module on first use (PEP 562): refreshing an Amazon
token does not import the library source or the jobs.
"""

from __future__ import annotations

import typing as _typing

# the real imports for type checkers; at run time each name loads on first use (PEP 562)
if _typing.TYPE_CHECKING:
    from ._import import parse_audible_auth, read_auth_file
    from ._license import read_license
    from ._locales import AMAZON_LOCALES
    from ._provider import AmazonProvider
    from ._source import AUDIBLE_MAX_PAGE, AUDIBLE_RESPONSE_GROUPS, AudibleSource, api_base
else:
    from .._lazy import lazy_exports as _lazy_exports

    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "parse_audible_auth": "._import",
            "read_auth_file": "._import",
            "read_license": "._license",
            "AMAZON_LOCALES": "._locales",
            "AmazonProvider": "._provider",
            "AUDIBLE_MAX_PAGE": "._source",
            "AUDIBLE_RESPONSE_GROUPS": "._source",
            "AudibleSource": "._source",
            "api_base": "._source",
        },
    )

__all__ = [
    "AMAZON_LOCALES",
    "AUDIBLE_MAX_PAGE",
    "AUDIBLE_RESPONSE_GROUPS",
    "AmazonProvider",
    "AudibleSource",
    "api_base",
    "parse_audible_auth",
    "read_auth_file",
    "read_license",
]
