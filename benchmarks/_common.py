"""Shared helpers for the benchmarks: machine info, tables, RESULTS.md sections.

Each benchmark owns one ``## ...`` section of ``benchmarks/RESULTS.md`` and
replaces only that section, re-reading the file right before writing so that
other benchmarks' sections written meanwhile are kept.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"


def use_test_helpers() -> None:
    """Make ``tests/`` importable (the real OAuth server and the fake token server)."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


# -- machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    """The 1-minute load average, to tell a quiet machine from a busy one."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def node_version() -> str:
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "not installed"


def npm_package_version(folder: Path, package: str) -> str:
    try:
        meta = json.loads((folder / "node_modules" / package / "package.json").read_text())
        return str(meta.get("version", "unknown"))
    except (OSError, ValueError):
        return "not installed"


def machine_lines(dists: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Markdown bullet lines describing the machine and the library versions."""
    versions = ", ".join(f"{d} {version_of(d)}" for d in dists)
    lines = [
        f"- CPUs usable (nproc): {usable_cpus()}; CPU: {cpu_model()}",
        f"- {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.release()} ({platform.machine()}); "
        f"SQLite {sqlite3.sqlite_version}",
        f"- Packages: {versions}",
    ]
    lines += [f"- {name}: {value}" for name, value in extra]
    return lines


# -- numbers and tables -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table, columns padded so it also reads well in a terminal."""
    cols = [list(map(str, col)) for col in zip(headers, *rows, strict=True)]
    widths = [max(len(cell) for cell in col) for col in cols]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


# -- RESULTS.md ----------------------------------------------------------------------------


def replace_section(text: str, title: str, body: str) -> str:
    """Replace the ``## {title}`` section of ``text`` (up to the next ``## ``) with ``body``.

    ``body`` must start with the ``## {title}`` line. A missing section is appended.
    """
    heading = f"## {title}"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    block = body.rstrip("\n") + "\n\n"
    if pattern.search(text):
        return pattern.sub(lambda _m: block, text, count=1).rstrip("\n") + "\n"
    if not text.strip():
        text = "# Benchmark results\n\n"
    return text.rstrip("\n") + "\n\n" + block.rstrip("\n") + "\n"


def write_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Re-read ``path`` and replace only our section (other sections are kept)."""
    current = path.read_text() if path.exists() else ""
    path.write_text(replace_section(current, title, body))
