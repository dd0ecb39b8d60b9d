"""Names the other stayfresh parts use from the engine; not a user API.

The command line validates work names, reads and overrides the device
constraints, and installs the OS service with these. They are public module
names so no part reaches into another's private modules (``tests/test_boundaries.py``),
but they carry no compatibility promise: use :mod:`stayfresh.work` instead.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
# at run time each name loads on first use (PEP 562): reading a setting does not load
# the service-file writers (XML, urllib, ssl)
if TYPE_CHECKING:
    from ._constraints import (
        SETTING_PREFIX,
        DeviceProbe,
        overrides_from_store,
        read_device_state,
        set_override,
    )
    from ._control import waker_for
    from ._model import check_work_name
    from ._runner import live_daemons
    from ._service import install_service, render_service, service_status, uninstall_service
else:
    from .._lazy import lazy_exports as _lazy_exports

    _WHERE = {
        "._constraints": "SETTING_PREFIX DeviceProbe overrides_from_store read_device_state set_override",
        "._control": "waker_for",
        "._model": "check_work_name",
        "._runner": "live_daemons",
        "._service": "install_service render_service service_status uninstall_service",
    }
    __getattr__, __dir__ = _lazy_exports(
        "stayfresh.work",
        {name: module for module, names in _WHERE.items() for name in names.split()},
        module=__name__,
    )

__all__ = [
    "SETTING_PREFIX",
    "DeviceProbe",
    "check_work_name",
    "install_service",
    "live_daemons",
    "overrides_from_store",
    "read_device_state",
    "render_service",
    "service_status",
    "set_override",
    "uninstall_service",
    "waker_for",
]
