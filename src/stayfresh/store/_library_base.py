"""Transition shim: the names now live in :mod:`._contracts`, :mod:`._rows` and :mod:`._work`."""

from ._contracts import *  # noqa: F403
from ._rows import *  # noqa: F403
from ._work import *  # noqa: F403
