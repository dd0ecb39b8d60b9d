"""The public surface is exactly what ``__all__`` says, and nothing private leaks."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ["stayfresh", "stayfresh.tokens", "stayfresh.store", "stayfresh.work"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_the_public_surface(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "stayfresh").startswith(("stayfresh", "typing"))
        and attr != "annotations"
    }
    assert exported == public, (
        f"{name}: only in __all__ {exported - public}, missing {public - exported}"
    )
    for attr in exported:
        assert getattr(module, attr) is not None


def test_every_cli_command_accepts_db() -> None:
    import click

    from stayfresh.cli import cli

    def leaves(group: click.Group) -> list[click.Command]:
        out: list[click.Command] = []
        for command in group.commands.values():
            out.extend(leaves(command) if isinstance(command, click.Group) else [command])
        return out

    for command in leaves(cli):
        assert any(p.name == "db" for p in command.params), command.name
