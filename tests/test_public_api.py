"""The public surface is exactly what ``__all__`` says, and nothing private leaks."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "stayfresh",
    "stayfresh.tokens",
    "stayfresh.store",
    "stayfresh.work",
    "stayfresh.jobs",
    "stayfresh.notify",
    "stayfresh.audible",
    "stayfresh.jobs.sources",
    "stayfresh.jobs.internal",
    "stayfresh.tokens.internal",
    "stayfresh.work.internal",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_the_public_surface(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for attr in sorted(exported):  # packages load their names lazily (PEP 562): load them all
        getattr(module, attr)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "stayfresh").startswith(("stayfresh", "typing"))
        and attr not in ("annotations", "TYPE_CHECKING")  # the import-free spelling of typing's
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

    cli.list_commands(click.Context(cli))  # commands load lazily: load every one
    for command in leaves(cli):
        assert any(p.name == "db" for p in command.params), command.name


def test_layering_tokens_and_notify_never_import_work() -> None:
    """DESIGN.md: dependencies point one way; ``jobs`` is where the parts meet."""
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parent.parent / "src" / "stayfresh"
    forbidden = {"tokens": ("work", "jobs", "notify", "cli"), "notify": ("work", "jobs", "cli"),
                 "work": ("jobs", "cli", "tokens", "notify"), "store": ("tokens", "work", "jobs", "notify", "cli")}  # fmt: skip
    for part, banned in forbidden.items():
        for path in (src / part).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    target = node.module.split(".")
                    name = (
                        target[0]
                        if node.level == 2
                        else (target[1] if target[0] == "stayfresh" and len(target) > 1 else "")
                    )
                    assert name not in banned, f"{path.relative_to(src)} imports {node.module}"
