"""Accounts, tokens, refresh intents, settings: written once for both backends.

The SQL is in ``queries/accounts.sql``. What stays per backend is physical:
the room an SQLite file sets aside before a refresh (:meth:`AccountsSQL._reserve`)
and how old secrets are scrubbed from the files after a logout
(:meth:`AccountsSQL._scrubbed`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ._contracts import AccountExists, Store
from ._guard import INTENT_LEASE
from ._rows import (
    AccountRow,
    RefreshIntent,
    TokenRow,
    account_from_row,
    intent_from_row,
    new_intent,
)
from ._sql import SQLBase, Tx


def _config_json(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True)


class AccountsSQL(SQLBase, Store):
    """The accounts and settings methods of :class:`Store`."""

    # -- backend hooks (physical, not logical) ----------------------------------------

    def _reserve(self, name: str) -> None:
        """Set aside room for the commit that ends ``name``'s refresh (SQLite only)."""

    def _release_reserve(self, name: str) -> None:
        """Give that room back just before the commit that needs it."""

    def _scrubbed(self, write: Callable[[], bool]) -> bool:
        """Run ``write`` (True when it changed a row) so that freed bytes do not survive."""
        return write()

    # -- accounts ----------------------------------------------------------------------

    def create_account(
        self, name: str, provider: str, config: Mapping[str, Any], tokens: TokenRow
    ) -> AccountRow:
        row = self.transact(
            lambda tx: tx.one(
                "create_account",
                name=name,
                provider=provider,
                config=_config_json(config),
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                token_type=tokens.token_type,
                scope=tokens.scope,
                expires_at=tokens.expires_at,
                obtained_at=tokens.obtained_at,
                now=time.time(),
            )
        )
        if row is None:
            raise AccountExists(f"account {name!r} already exists")
        return account_from_row(row)

    def get_account(self, name: str) -> AccountRow | None:
        row = self.select_one("get_account", name=name)
        return None if row is None else account_from_row(row)

    def list_accounts(self) -> list[AccountRow]:
        return [account_from_row(r) for r in self.select("list_accounts")]

    def delete_account(self, name: str) -> bool:
        def body(tx: Tx) -> bool:
            tx.run("forget_fresh", kind="token", key=name)  # its refresh telemetry
            return tx.run("delete_account", name=name) > 0

        return self.transact(body)

    def clear_secrets(
        self, name: str, *, config_keys: Collection[str], message: str | None = None
    ) -> bool:
        def body(tx: Tx) -> bool:
            row = tx.one("account_config_for_update", name=name)
            if row is None:
                return False
            config = {k: v for k, v in json.loads(row["config"]).items() if k not in config_keys}
            tx.run(
                "clear_secrets",
                name=name,
                config=_config_json(config),
                message=message,
                now=time.time(),
            )
            return True

        return self._scrubbed(lambda: self.transact(body))

    def update_config(self, name: str, config: Mapping[str, Any]) -> None:
        self.transact(
            lambda tx: tx.run(
                "update_config", name=name, config=_config_json(config), now=time.time()
            )
        )

    def swap_tokens(
        self, name: str, expected_version: int, tokens: TokenRow, *, mark_ok: bool = True
    ) -> int | None:
        def body(tx: Tx) -> int:
            tx.run("end_intent", name=name)
            return tx.run(
                "swap_tokens",
                name=name,
                expected_version=expected_version,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                token_type=tokens.token_type,
                scope=tokens.scope,
                expires_at=tokens.expires_at,
                obtained_at=tokens.obtained_at,
                now=time.time(),
                mark_ok=mark_ok,
            )

        self._release_reserve(name)
        return expected_version + 1 if self.transact(body) == 1 else None

    def set_status(self, name: str, status: str, message: str | None = None) -> None:
        self.transact(
            lambda tx: tx.run(
                "set_status", name=name, status=status, message=message, now=time.time()
            )
        )

    def end_refresh(
        self, name: str, *, needs_login: str | None = None, rejected: str | None = None
    ) -> None:
        def body(tx: Tx) -> None:
            tx.run("end_intent", name=name)
            if needs_login is not None:
                tx.run(
                    "mark_needs_login", name=name, message=needs_login, rejected=rejected,
                    now=time.time(),
                )  # fmt: skip

        self._release_reserve(name)
        self.transact(body)

    # -- refresh intents ---------------------------------------------------------------

    def begin_refresh(
        self, name: str, version: int, *, now: float | None = None, lease: float = INTENT_LEASE
    ) -> RefreshIntent | None:
        at = time.time() if now is None else now

        def body(tx: Tx) -> RefreshIntent | None:
            row = tx.one("account_refresh_token", name=name)  # the account row, locked
            if row is None or int(row["version"]) != version:
                return None  # gone, or another process stored newer tokens: do not spend
            existing = tx.one("get_intent", name=name)
            if existing is not None:
                other = intent_from_row(existing)
                if other.spends(row["refresh_token"]) and other.held_elsewhere(at):
                    return other  # another process is spending this very token
            intent = new_intent(name, version, row["refresh_token"], at=at, lease=lease)
            tx.run("put_intent", **dataclasses.asdict(intent))
            return intent

        self._reserve(name)
        intent: RefreshIntent | None = None
        try:
            intent = self.transact(body)
        finally:
            if intent is None or intent.held_elsewhere(at):  # nothing of ours to commit later
                self._release_reserve(name)
        return intent

    def refresh_intent(self, name: str) -> RefreshIntent | None:
        row = self.select_one("get_intent", name=name)
        return None if row is None else intent_from_row(row)

    # -- settings and locks ------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        row = self.select_one("get_setting", key=key)
        return None if row is None else str(row["value"])

    def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            self.transact(lambda tx: tx.run("delete_setting", key=key))
        else:
            self.transact(lambda tx: tx.run("put_setting", key=key, value=value))
