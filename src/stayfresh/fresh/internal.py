"""What other stayfresh parts use of the core beyond its public API."""

from __future__ import annotations

from ._background import registered

__all__ = ["registered"]
