"""Public boundaries: no part reaches into another's private modules, and importing wires nothing.

A *part* is a subpackage of stayfresh (``cli``, ``jobs``, ``tokens``, ``notify``,
``work``, ``store``, ``audible``). A module may import its own part's private
modules (``._model``) and the project's shared internals at the top level
(``stayfresh._http``, ``stayfresh._input``, ``stayfresh._retry``, ``stayfresh._lazy``,
``stayfresh._wiring``), but another part only through its public names (its
``__init__``, or a public module such as ``stayfresh.work.internal``).

Importing a module changes no global registry or hook list; the one
composition point, :func:`stayfresh.jobs.install` (``stayfresh._wiring``), does.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "stayfresh"


def _part(relative: Path) -> str | None:
    """The part a source file belongs to (None for the top-level modules)."""
    return relative.parts[0] if len(relative.parts) > 1 else None


def _absolute(relative: Path, node: ast.ImportFrom) -> str:
    """The absolute module name ``node`` imports from, in a file at ``relative``."""
    if node.level == 0:
        return node.module or ""
    package = ["stayfresh", *relative.parent.parts]  # an __init__ is in its own package
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def private_crossings(relative: Path, source: str) -> list[str]:
    """Imports in ``source`` (the file at ``relative`` under ``src/stayfresh``) of
    another part's private modules, as ``"line: target"``."""
    own = _part(relative)
    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(relative, node)
            # ``from ..jobs import _inline`` imports the private module too
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        for target in targets:
            parts = target.split(".")
            if len(parts) < 3 or parts[0] != "stayfresh" or parts[1] == own:
                continue
            if parts[1].startswith("_"):
                continue  # a shared top-level internal (stayfresh._http…), not a part
            if any(p.startswith("_") for p in parts[2:]):
                found.append(f"{node.lineno}: {target}")
                break
    return found


def test_no_module_imports_another_parts_private_module() -> None:
    crossings = {
        str(path.relative_to(SRC)): found
        for path in sorted(SRC.rglob("*.py"))
        if (found := private_crossings(path.relative_to(SRC), path.read_text()))
    }
    assert crossings == {}


@pytest.mark.parametrize(
    ("where", "line", "bad"),
    [
        ("cli/_jobs.py", "from ..jobs._settings import DEFAULTS", True),
        ("cli/_library.py", "from ..jobs import _inline", True),
        ("jobs/_notify.py", "from stayfresh.notify._refresh import refresh", True),
        ("jobs/_notify.py", "import stayfresh.notify._refresh", True),
        ("notify/_sinks.py", "from ..store._notify_base import DEFAULT_SINK_ID", True),
        ("audible/_source.py", "from ..jobs._sources import Page", True),
        ("audible/_provider.py", "from ..tokens._providers import Provider", True),
        ("audible/_import.py", "from ..tokens.internal import text_field", False),
        ("jobs/_notify.py", "from ..notify import refresh", False),
        ("jobs/_notify.py", "from ._lifecycle import account_tag", False),
        ("jobs/__init__.py", "from ._download import Downloader", False),
        ("cli/_service.py", "from ..work.internal import install_service", False),
        ("jobs/_api.py", "from .._http import fetch", False),
        ("cli/_app.py", "from .._wiring import install", False),
        ("_wiring.py", "from .jobs.internal import schedule_delivery", False),
    ],
)
def test_the_scan_tells_private_from_public(where: str, line: str, bad: bool) -> None:
    assert bool(private_crossings(Path(where), line)) is bad


#: imports every stayfresh module, checking after each that no registry or hook list changed
IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
import stayfresh
from stayfresh.work import _workers
from stayfresh.notify import _hooks
from stayfresh.tokens import _providers

def state():
    sources = sys.modules.get("stayfresh.jobs._sources")
    return {
        "workers": sorted(_workers._registry) + sorted(_workers._declared),
        "reschedule_hooks": [getattr(h, "__qualname__", repr(h)) for h in _hooks.after_reschedule],
        "providers": sorted(_providers._registry),
        "sources": sorted(sources._sources) if sources else ["json"],
    }

before = state()
changed = {}
names = [m.name for m in pkgutil.walk_packages(stayfresh.__path__, "stayfresh.")]
for name in names:
    importlib.import_module(name)
    if state() != before:
        changed[name] = state()
        before = state()
print(json.dumps({"count": len(names), "changed": changed, "state": state()}))
"""


def _run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_importing_any_module_wires_nothing() -> None:
    seen = _run(IMPORT_ALL)
    assert seen["count"] > 80  # every module was imported
    assert seen["changed"] == {}
    assert seen["state"] == {
        "workers": [],
        "reschedule_hooks": [],
        "providers": [],
        "sources": ["json"],
    }


def test_install_wires_the_parts_once() -> None:
    code = (
        "import json, stayfresh.jobs as jobs\n"
        "from stayfresh.notify import _hooks\n"
        "jobs.install(); jobs.install()\n"
        "print(json.dumps([h.__module__ + '.' + h.__qualname__ for h in _hooks.after_reschedule]))\n"
    )
    assert _run(code) == ["stayfresh._wiring.schedule_delivery_after_reschedule"]


def test_builtin_workers_resolve_by_name_without_registering() -> None:
    code = (
        "import json, sys\n"
        "from stayfresh.work import resolve_worker\n"
        "names = ['stayfresh.token-refresh', 'stayfresh.library-sync', 'stayfresh.download',\n"
        "         'stayfresh.notify-refresh', 'stayfresh.notify-deliver', 'noop']\n"
        "found = {n: f'{resolve_worker(n).__module__}:{resolve_worker(n).__name__}' for n in names}\n"
        "import stayfresh.jobs.internal as internal\n"
        "same = all(resolve_worker(n) is getattr(internal, f.split(':')[1])\n"
        "           for n, f in found.items() if n != 'noop')\n"
        "print(json.dumps({'found': found, 'same': same}))\n"
    )
    seen = _run(code)
    assert seen["same"] is True
    assert seen["found"] == {
        "stayfresh.token-refresh": "stayfresh.jobs._token_refresh:token_refresh_worker",
        "stayfresh.library-sync": "stayfresh.jobs._library:library_sync_worker",
        "stayfresh.download": "stayfresh.jobs._download:download_worker",
        "stayfresh.notify-refresh": "stayfresh.jobs._notify:refresh_worker",
        "stayfresh.notify-deliver": "stayfresh.jobs._notify:deliver_worker",
        "noop": "stayfresh.work._workers:noop",
    }


def test_the_generic_jobs_do_not_load_the_audible_client() -> None:
    code = (
        "import json, sys\n"
        "import stayfresh.jobs, stayfresh.jobs.sources, stayfresh.jobs.internal\n"
        "print(json.dumps('stayfresh.audible' in sys.modules))\n"
    )
    assert _run(code) is False


def test_the_generic_parts_do_not_load_the_audible_client() -> None:
    code = (
        "import json, sys\n"
        "import stayfresh.tokens, stayfresh.tokens.internal, stayfresh.jobs, stayfresh.store\n"
        "import stayfresh.notify, stayfresh.work, stayfresh.work.internal, stayfresh.jobs.sources\n"
        "from stayfresh.tokens import Keeper, OAuth2Provider, get_provider, read_import_file\n"
        "get_provider('oauth2'), get_provider('oidc')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('stayfresh.audible'))))\n"
    )
    assert _run(code) == []


def test_the_amazon_provider_resolves_to_the_audible_client_and_stays_light() -> None:
    code = (
        "import json, sys\n"
        "from stayfresh.tokens import _providers, get_provider, provider_names\n"
        "provider = get_provider('amazon')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('stayfresh.audible',\n"
        "                'stayfresh.jobs', 'stayfresh.work', 'httpx')))\n"
        "import stayfresh.audible, stayfresh.tokens\n"
        "print(json.dumps({\n"
        "    'class': type(provider).__module__ + ':' + type(provider).__qualname__,\n"
        "    'same': type(provider) is stayfresh.audible.AmazonProvider\n"
        "            is stayfresh.tokens.AmazonProvider,\n"
        "    'once': get_provider('amazon') is provider,\n"
        "    'locales': stayfresh.tokens.AMAZON_LOCALES is stayfresh.audible.AMAZON_LOCALES,\n"
        "    'names': provider_names(), 'registry': sorted(_providers._registry),\n"
        "    'loaded': loaded}))\n"
    )
    assert _run(code) == {
        "class": "stayfresh.audible._provider:AmazonProvider",
        "same": True,
        "once": True,
        "locales": True,
        "names": ["amazon", "oauth2", "oidc"],
        "registry": [],  # resolved by module path, not registered
        "loaded": [  # no source, no jobs
            "stayfresh.audible",
            "stayfresh.audible._locales",
            "stayfresh.audible._provider",
        ],
    }


def test_importing_a_stayfresh_account_file_does_not_load_the_audible_client() -> None:
    code = (
        "import json, sys\n"
        "from stayfresh.tokens import read_import_file\n"
        "ours = read_import_file(json.dumps({'provider': 'oauth2', 'client_id': 'c',\n"
        "    'token_url': 'https://idp.invalid/token', 'refresh_token': 'r-1'}).encode())\n"
        "before = 'stayfresh.audible' in sys.modules\n"
        "theirs = read_import_file(json.dumps({'refresh_token': 'Atnr|r-2',\n"
        "    'locale_code': 'de', 'adp_token': 'x'}).encode())\n"
        "print(json.dumps([ours.source, before, theirs.source, theirs.provider,\n"
        "                  theirs.config['locale'], 'stayfresh.audible._import' in sys.modules]))\n"
    )
    assert _run(code) == ["stayfresh", False, "audible", "amazon", "de", True]


def test_jobs_exports_what_a_user_needs() -> None:
    import stayfresh.jobs

    assert len(stayfresh.jobs.__all__) <= 25
