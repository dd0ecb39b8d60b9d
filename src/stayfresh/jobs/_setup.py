"""Adding an account from Python in one typed call, the background safety net included."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ..store import Store, open_store
from ..tokens import Account, TokenSet
from ..tokens import add_account as _store_account
from ._lifecycle import on_account_ready

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


def add_account(
    store: Store | None,
    name: str,
    *,
    refresh_token: str,
    client_id: str,
    token_url: str | None = None,
    issuer: str | None = None,
    client_secret: str | None = None,
    scope: str | None = None,
    auth_method: AuthMethod = "client_secret_basic",
    access_token: str | None = None,
    expires_at: dt.datetime | None = None,
    background: bool = True,
) -> Account:
    """Store an OAuth 2.0 account (or OpenID Connect with ``issuer``) and arm its safety net.

    ``store`` None opens the default database (``STAYFRESH_DB`` or the user
    data directory). Give ``token_url``, or ``issuer`` to find it by OIDC
    discovery. Without ``access_token`` the first use refreshes. With
    ``background`` (the default) the account's periodic works are scheduled
    as the CLI does (:func:`on_account_ready`: the token refresh backup, run by
    ``stayfresh daemon``). Every value is checked as ``stayfresh account add``
    checks it (:class:`~stayfresh.errors.ConfigError`).
    """
    config: dict[str, str] = {"client_id": client_id, "auth_method": auth_method}
    for key, value in (("token_url", token_url), ("issuer", issuer),
                       ("client_secret", client_secret), ("scope", scope)):  # fmt: skip
        if value is not None:
            config[key] = value
    tokens = TokenSet(
        access_token=access_token,
        expires_at=expires_at,
        refresh_token=refresh_token,
        scope=scope,
        obtained_at=dt.datetime.now(dt.UTC) if access_token else None,
    )
    target = store if store is not None else open_store()
    account = _store_account(target, name, "oidc" if issuer else "oauth2", config, tokens)
    if background:
        on_account_ready(target, name)
    return account
