"""Work constraints: detection from a fake sysfs, overrides, predicates, the watcher.

The watcher's netlink path runs for real (root creates a link); its
NetworkManager path runs against a private ``dbus-daemon`` with a stand-in NM
service, since no real NetworkManager runs here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stayfresh.errors import ConfigError
from stayfresh.store import open_store
from stayfresh.work._constraints import (
    Constraints,
    ConstraintWatcher,
    DeviceProbe,
    overrides_from_store,
    read_device_state,
    set_override,
    unmet_constraints,
    validate_override,
)
from stayfresh.work._device import (
    NM_BUS_NAME,
    NM_PATH,
    network_from_nm,
    parse_pmset_batt,
    read_network,
    read_network_nm,
    read_power_sysfs,
    storage_is_low,
)
from stayfresh.work._watcher import netlink_is_relevant

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sysfs")

ROUTE_HEADER = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"


# -- a fake /sys and /proc ---------------------------------------------------------


class FakeMachine:
    """Builds the few /sys and /proc files detection reads."""

    def __init__(self, root: Path) -> None:
        self.sys = root / "sys"
        self.proc = root / "proc"
        (self.sys / "class" / "net").mkdir(parents=True)
        (self.sys / "class" / "power_supply").mkdir(parents=True)
        (self.proc / "net").mkdir(parents=True)
        (self.proc / "net" / "route").write_text(ROUTE_HEADER)
        self.data = root / "data"
        self.data.mkdir()

    def iface(
        self,
        name: str,
        *,
        arp_type: int = 1,
        wireless: bool = False,
        devtype: str | None = None,
        driver: str | None = None,
        operstate: str = "up",
    ) -> None:
        base = self.sys / "class" / "net" / name
        base.mkdir()
        (base / "type").write_text(f"{arp_type}\n")
        (base / "operstate").write_text(operstate + "\n")
        uevent = f"INTERFACE={name}\n" + (f"DEVTYPE={devtype}\n" if devtype else "")
        (base / "uevent").write_text(uevent)
        if wireless:
            (base / "wireless").mkdir()
        if driver:
            target = self.sys / "bus" / "usb" / "drivers" / driver
            target.mkdir(parents=True, exist_ok=True)
            (base / "device").mkdir()
            (base / "device" / "driver").symlink_to(target)

    def default_route(self, name: str) -> None:
        with (self.proc / "net" / "route").open("a") as f:
            f.write(f"{name}\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n")
            f.write(f"{name}\t0002A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n")

    def supply(self, name: str, **files: str) -> None:
        base = self.sys / "class" / "power_supply" / name
        base.mkdir()
        for key, value in files.items():
            (base / key).write_text(value + "\n")

    def probe(self) -> DeviceProbe:
        return DeviceProbe(
            sys_root=self.sys, proc_root=self.proc, data_dir=self.data, bus_factory=None
        )


def require_dbus_peer(what: str, present: bool) -> None:
    """Skip locally without jeepney/dbus-daemon, but fail in CI, which installs them."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI (pip install jeepney; apt-get install dbus-daemon)")
    pytest.skip(f"{what} is not installed")


def have_jeepney() -> bool:
    try:
        import jeepney  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def machine(tmp_path: Path) -> FakeMachine:
    return FakeMachine(tmp_path)


def net(machine: FakeMachine) -> Any:
    return read_network(machine.sys, machine.proc, bus_factory=None)


# -- network detection -------------------------------------------------------------


def test_wifi_is_connected_and_unmetered(machine: FakeMachine) -> None:
    machine.iface("wlp2s0", wireless=True)
    machine.default_route("wlp2s0")
    state = net(machine)
    assert (state.connected, state.metered, state.kind) == (True, False, "wifi")
    assert state.interfaces == ("wlp2s0",)


def test_ethernet_is_unmetered(machine: FakeMachine) -> None:
    machine.iface("enp3s0")
    machine.default_route("enp3s0")
    state = net(machine)
    assert (state.connected, state.metered, state.kind) == (True, False, "ethernet")


@pytest.mark.parametrize(
    ("name", "kwargs", "kind"),
    [
        ("wwan0", {"devtype": "wwan", "arp_type": 65534}, "cellular"),
        ("ppp0", {"arp_type": 512}, "cellular"),
        ("enx0a1b2c3d4e5f", {"driver": "rndis_host"}, "tethered"),
        ("usb0", {}, "tethered"),
    ],
)
def test_mobile_links_are_metered(
    machine: FakeMachine, name: str, kwargs: dict[str, Any], kind: str
) -> None:
    machine.iface(name, **kwargs)
    machine.default_route(name)
    state = net(machine)
    assert (state.connected, state.metered, state.kind) == (True, True, kind)


def test_no_default_route_is_not_connected(machine: FakeMachine) -> None:
    machine.iface("wlp2s0", wireless=True)  # associated but no route yet
    state = net(machine)
    assert (state.connected, state.kind) == (False, "none")


def test_default_route_on_a_down_link_is_not_connected(machine: FakeMachine) -> None:
    machine.iface("enp3s0", operstate="down")
    machine.default_route("enp3s0")
    assert not net(machine).connected


def test_vpn_takes_its_cost_from_the_physical_link(machine: FakeMachine) -> None:
    machine.iface("wg0", arp_type=65534)
    machine.iface("wwan0", devtype="wwan")
    machine.default_route("wg0")
    machine.default_route("wwan0")
    state = net(machine)
    assert (state.metered, state.kind) == (True, "cellular")


def test_lone_vpn_cost_is_unknown_and_counts_as_unmetered(machine: FakeMachine) -> None:
    machine.iface("tun0", arp_type=65534)
    machine.default_route("tun0")
    state = net(machine)
    assert (state.connected, state.metered, state.kind) == (True, None, "vpn")
    probe = machine.probe()
    assert unmet_constraints(Constraints(network="unmetered"), probe=probe) == []


def test_ipv6_only_default_route(machine: FakeMachine) -> None:
    machine.iface("enp3s0")
    (machine.proc / "net" / "ipv6_route").write_text(
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 enp3s0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n"
    )
    state = net(machine)
    assert (state.connected, state.interfaces) == (True, ("enp3s0",))


# -- power -----------------------------------------------------------------------


def test_battery_low_when_discharging_at_15_percent(machine: FakeMachine) -> None:
    machine.supply("BAT0", type="Battery", capacity="15", status="Discharging", present="1")
    machine.supply("AC", type="Mains", online="0")
    state = read_power_sysfs(machine.sys)
    assert state is not None
    assert (state.battery_present, state.battery_percent, state.charging, state.battery_low) == (
        True,
        15.0,
        False,
        True,
    )


def test_battery_at_16_percent_is_not_low(machine: FakeMachine) -> None:
    machine.supply("BAT0", type="Battery", capacity="16", status="Discharging")
    state = read_power_sysfs(machine.sys)
    assert state is not None and not state.battery_low


def test_charging_battery_is_never_low(machine: FakeMachine) -> None:
    machine.supply("BAT0", type="Battery", capacity="5", status="Charging")
    state = read_power_sysfs(machine.sys)
    assert state is not None and (state.charging, state.battery_low) == (True, False)


def test_mains_online_counts_as_charging_even_when_battery_holds(machine: FakeMachine) -> None:
    # charge thresholds: plugged in, battery "Not charging" at 10 %
    machine.supply("BAT0", type="Battery", capacity="10", status="Not charging")
    machine.supply("ADP1", type="Mains", online="1")
    state = read_power_sysfs(machine.sys)
    assert state is not None and (state.charging, state.battery_low) == (True, False)


def test_peripheral_batteries_are_ignored(machine: FakeMachine) -> None:
    machine.supply(
        "hidpp_battery_0", type="Battery", capacity="3", status="Discharging", scope="Device"
    )
    state = read_power_sysfs(machine.sys)
    assert state is not None and (state.battery_present, state.battery_low) == (False, False)


def test_no_battery_on_mains(machine: FakeMachine) -> None:
    machine.supply("AC", type="Mains", online="1")
    state = read_power_sysfs(machine.sys)
    assert state is not None
    assert (state.battery_present, state.charging, state.battery_low) == (False, True, False)


def test_no_supply_info_at_all_is_on_mains(machine: FakeMachine) -> None:
    state = read_power_sysfs(machine.sys)
    assert state is not None and (state.charging, state.battery_low) == (True, False)


def test_pmset_parsing() -> None:
    out = (
        "Now drawing from 'Battery Power'\n"
        " -InternalBattery-0 (id=1234)\t12%; discharging; 0:40 remaining present: true\n"
    )
    state = parse_pmset_batt(out)
    assert (state.battery_percent, state.charging, state.battery_low) == (12.0, False, True)
    ac = parse_pmset_batt(
        "Now drawing from 'AC Power'\n -InternalBattery-0 (id=1)\t80%; charging; 1:00 remaining\n"
    )
    assert (ac.charging, ac.battery_low) == (True, False)


# -- storage -----------------------------------------------------------------------


def test_storage_threshold_is_ten_percent_capped_at_500_mib() -> None:
    mib = 1024 * 1024
    assert storage_is_low(99 * mib, 1000 * mib)  # below 10 % of a small disk
    assert not storage_is_low(101 * mib, 1000 * mib)
    assert storage_is_low(499 * mib, 1000 * 1000 * mib)  # a big disk: 500 MiB cap
    assert not storage_is_low(501 * mib, 1000 * 1000 * mib)


# -- constraints, overrides, predicates ------------------------------------------


def test_constraints_json_round_trip_and_validation() -> None:
    c = Constraints(network="unmetered", battery_not_low=True, predicates=("os.path:exists",))
    assert c.to_json() == {
        "network": "unmetered",
        "battery_not_low": True,
        "predicates": ["os.path:exists"],
    }
    assert Constraints.from_json(c.to_json()) == c
    assert Constraints.from_json(None).is_empty()
    assert Constraints().to_json() == {}
    assert not c.is_empty()
    with pytest.raises(ConfigError):
        Constraints.from_json({"wifi_only": True})
    with pytest.raises(ConfigError):
        Constraints(network="wifi")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Constraints(predicates=("not a path",))


@linux_only
def test_unmet_reasons_from_the_fake_machine(machine: FakeMachine) -> None:
    machine.iface("wwan0", devtype="wwan")
    machine.default_route("wwan0")
    machine.supply("BAT0", type="Battery", capacity="9", status="Discharging")
    probe = machine.probe()
    everything = Constraints(network="unmetered", battery_not_low=True, charging=True)
    reasons = unmet_constraints(everything, probe=probe)
    assert len(reasons) == 3
    assert reasons[0].startswith("network: metered cellular (wwan0)")
    assert reasons[1].startswith("battery: low (9%)")
    assert reasons[2].startswith("charging: not plugged in")
    assert unmet_constraints(Constraints(network="connected"), probe=probe) == []
    assert unmet_constraints(Constraints(), probe=probe) == []


@linux_only
def test_overrides_replace_detection(machine: FakeMachine) -> None:
    machine.iface("enp3s0")
    machine.default_route("enp3s0")
    probe = machine.probe()
    wifi_only = Constraints(network="unmetered")
    assert unmet_constraints(wifi_only, probe=probe) == []
    assert unmet_constraints(wifi_only, {"network": "metered"}, probe=probe) == [
        "network: metered unknown (source: override)"
    ]
    assert unmet_constraints(Constraints(network="connected"), {"network": "none"}, probe=probe)
    assert unmet_constraints(Constraints(battery_not_low=True), {"battery": "low"}, probe=probe)
    assert unmet_constraints(Constraints(charging=True), {"charging": "no"}, probe=probe)
    assert unmet_constraints(Constraints(storage_not_low=True), {"storage": "low"}, probe=probe)
    assert not unmet_constraints(Constraints(storage_not_low=True), probe=probe)
    # "auto" and invalid values fall back to detection
    assert unmet_constraints(wifi_only, {"network": "auto"}, probe=probe) == []
    assert unmet_constraints(wifi_only, {"network": "sometimes"}, probe=probe) == []
    state = read_device_state({"network": "unmetered", "battery": "auto"}, probe=probe)
    assert state.overrides == {"network": "unmetered"}
    assert state.to_json()["network"]["source"] == "override"


def test_override_settings_in_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    try:
        assert overrides_from_store(store) == {}
        assert set_override(store, "Network", " Metered ") == "metered"
        set_override(store, "charging", "yes")
        assert store.get_setting("constraints.network") == "metered"
        assert overrides_from_store(store) == {"network": "metered", "charging": "yes"}
        set_override(store, "network", "auto")
        assert store.get_setting("constraints.network") is None
        assert overrides_from_store(store) == {"charging": "yes"}
        with pytest.raises(ConfigError, match="network, battery, charging, storage"):
            set_override(store, "wifi", "yes")
        with pytest.raises(ConfigError, match="auto, ok, low"):
            validate_override("battery", "full")
    finally:
        store.close()


# module-level predicates, resolved by import path in the tests below
PREDICATE_VALUE = {"ok": True}


def predicate_ok() -> bool:
    return PREDICATE_VALUE["ok"]


def predicate_raises() -> bool:
    raise RuntimeError("the VPN API is down")


def test_user_predicates(machine: FakeMachine, caplog: pytest.LogCaptureFixture) -> None:
    probe = machine.probe()
    c = Constraints(predicates=("test_constraints:predicate_ok",))
    PREDICATE_VALUE["ok"] = True
    assert unmet_constraints(c, probe=probe) == []
    PREDICATE_VALUE["ok"] = False
    assert unmet_constraints(c, probe=probe) == [
        "predicate test_constraints:predicate_ok returned False"
    ]
    failing = Constraints(predicates=("test_constraints:predicate_raises",))
    assert unmet_constraints(failing, probe=probe) == [
        "predicate test_constraints:predicate_raises raised RuntimeError: the VPN API is down"
    ]
    assert "the VPN API is down" in caplog.text  # logged with its traceback
    missing = Constraints(predicates=("no_such_module_here:f",))
    assert unmet_constraints(missing, probe=probe)[0].startswith(
        "predicate no_such_module_here:f raised ModuleNotFoundError"
    )


# -- NetworkManager over D-Bus: a fake bus object ---------------------------------


class FakeNMBus:
    """Answers jeepney ``Properties.GetAll`` messages from a dict of objects."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, tuple[str, Any]]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def send_and_get_reply(self, msg: Any, timeout: float | None = None) -> Any:
        from jeepney import HeaderFields, MessageType

        path = msg.header.fields[HeaderFields.path]
        assert msg.header.fields[HeaderFields.member] == "GetAll"
        assert msg.header.fields[HeaderFields.destination] == NM_BUS_NAME
        (interface,) = msg.body
        self.calls.append((path, interface))
        header = SimpleNamespace(message_type=MessageType.method_return)
        return SimpleNamespace(header=header, body=(self.objects[(path, interface)],))


def test_nm_manager_metered_property() -> None:
    require_dbus_peer("jeepney", have_jeepney())
    bus = FakeNMBus(
        {
            (NM_PATH, NM_BUS_NAME): {
                "State": ("u", 70),
                "Connectivity": ("u", 4),
                "Metered": ("u", 3),  # GUESS_YES
                "PrimaryConnectionType": ("s", "802-11-wireless"),
                "PrimaryConnection": ("o", "/org/freedesktop/NetworkManager/ActiveConnection/1"),
            }
        }
    )
    state = read_network_nm(bus)
    assert (state.connected, state.metered, state.kind, state.source) == (
        True,
        True,
        "wifi",
        "networkmanager",
    )
    assert bus.calls == [(NM_PATH, NM_BUS_NAME)]


def test_nm_falls_back_to_the_primary_connections_device() -> None:
    require_dbus_peer("jeepney", have_jeepney())
    active = "/org/freedesktop/NetworkManager/ActiveConnection/7"
    device = "/org/freedesktop/NetworkManager/Devices/3"
    bus = FakeNMBus(
        {
            (NM_PATH, NM_BUS_NAME): {
                "State": ("u", 70),
                "PrimaryConnection": ("o", active),
                "PrimaryConnectionType": ("s", "802-3-ethernet"),
            },
            (active, NM_BUS_NAME + ".Connection.Active"): {"Devices": ("ao", [device])},
            (device, NM_BUS_NAME + ".Device"): {"Metered": ("u", 4)},  # GUESS_NO
        }
    )
    state = read_network_nm(bus)
    assert (state.connected, state.metered, state.kind) == (True, False, "ethernet")


@pytest.mark.parametrize(
    ("props", "connected", "metered"),
    [
        ({"State": 20}, False, None),  # DISCONNECTED
        ({"State": 50}, False, None),  # CONNECTED_LOCAL: no default route
        ({"State": 60, "Connectivity": 2}, False, None),  # captive portal
        ({"State": 60, "Connectivity": 3, "Metered": 1}, True, True),  # limited, metered
        ({"State": 70, "Metered": 0}, True, None),  # metered unknown
        ({"State": 70, "Metered": 2}, True, False),
    ],
)
def test_nm_state_decision(props: dict[str, int], connected: bool, metered: bool | None) -> None:
    state = network_from_nm(props, None)
    assert (state.connected, state.metered) == (connected, metered)


# -- the watcher: netlink, for real ----------------------------------------------


def _netlink_available() -> str | None:
    if not sys.platform.startswith("linux"):
        return "netlink is Linux-only"
    if os.geteuid() != 0:
        return "creating a network link needs root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = subprocess.run(
        ["ip", "link", "add", "sfprobe0", "type", "bridge"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot create a bridge link: {probe.stderr.strip()}"
    subprocess.run(["ip", "link", "del", "sfprobe0"], check=True)
    return None


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()


def test_watcher_wakes_on_a_real_link_change() -> None:
    reason = _netlink_available()
    if reason is not None:
        pytest.skip(reason)
    calls = Counter()
    watcher = ConstraintWatcher(calls, poll_interval=3600, debounce=0.05, bus_factory=None)
    name = f"sfw{os.getpid() % 100000}"
    watcher.start()
    try:
        watcher.start()  # idempotent
        assert watcher.sources == ("netlink",)
        subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        assert calls.event.wait(10), "no wake-up after RTM_NEWLINK"
        calls.event.clear()
        subprocess.run(["ip", "link", "del", name], check=True)
        assert calls.event.wait(10), "no wake-up after RTM_DELLINK"
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        watcher.stop()
    assert not watcher.running
    watcher.stop()  # idempotent


def test_watcher_periodic_check_and_network_override() -> None:
    calls = Counter()
    watcher = ConstraintWatcher(calls, {"network": "metered"}, poll_interval=0.05)
    watcher.start()
    try:
        assert watcher.sources == ()  # the override makes network events moot
        assert calls.event.wait(10)
    finally:
        watcher.stop()


def test_netlink_ignores_wireless_scan_events() -> None:
    import struct

    def nlmsg(msg_type: int, payload: bytes) -> bytes:
        return struct.pack("=IHHII", 16 + len(payload), msg_type, 0, 0, 0) + payload

    ifinfo = bytes(16)
    wireless = struct.pack("=HH", 8, 11) + b"\0" * 4  # IFLA_WIRELESS
    operstate = struct.pack("=HH", 5, 16) + b"\x06\0\0\0"  # IFLA_OPERSTATE
    assert not netlink_is_relevant(nlmsg(16, ifinfo + wireless))
    assert netlink_is_relevant(nlmsg(16, ifinfo + operstate))
    assert netlink_is_relevant(nlmsg(24, bytes(12)))  # RTM_NEWROUTE
    assert not netlink_is_relevant(nlmsg(3, b""))  # NLMSG_DONE


# -- the watcher and the query against a real dbus-daemon with a stand-in NM -----------


@pytest.fixture
def private_bus(tmp_path: Path) -> Iterator[str]:
    require_dbus_peer("jeepney", have_jeepney())
    daemon = shutil.which("dbus-daemon")
    require_dbus_peer("dbus-daemon", daemon is not None)
    assert daemon is not None
    address = f"unix:path={tmp_path}/bus"
    proc = subprocess.Popen(
        [daemon, "--session", "--nofork", "--nopidfile", f"--address={address}", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # it cannot raise its fd limit in a sandbox; harmless
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # printed once the bus listens
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


class StandInNM:
    """Owns NM's name on a private bus, answers GetAll and emits PropertiesChanged."""

    def __init__(self, address: str, props: dict[str, tuple[str, Any]]) -> None:
        from jeepney import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.props = props
        self.conn = open_dbus_connection(bus=address)
        self.conn.send_and_get_reply(message_bus.RequestName(NM_BUS_NAME), timeout=5)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_method_return

        while not self.stopping:
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return
            if msg.header.message_type == MessageType.method_call and (
                msg.header.fields.get(HeaderFields.member) == "GetAll"
            ):
                self.conn.send(new_method_return(msg, "a{sv}", (self.props,)))

    def change(self, name: str, value: tuple[str, Any]) -> None:
        from jeepney import DBusAddress, new_signal

        self.props[name] = value
        emitter = DBusAddress(NM_PATH, interface="org.freedesktop.DBus.Properties")
        body = (NM_BUS_NAME, {name: value}, [])
        self.conn.send(new_signal(emitter, "PropertiesChanged", "sa{sv}as", body))

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.conn.close()


def test_nm_query_and_signal_over_a_real_bus(private_bus: str, machine: FakeMachine) -> None:
    from jeepney.io.blocking import open_dbus_connection

    nm = StandInNM(
        private_bus,
        {"State": ("u", 70), "Connectivity": ("u", 4), "Metered": ("u", 2)},
    )

    def bus_factory() -> Any:
        return open_dbus_connection(bus=private_bus)

    try:
        probe = DeviceProbe(
            sys_root=machine.sys,
            proc_root=machine.proc,
            data_dir=machine.data,
            bus_factory=bus_factory,
        )
        wifi_only = Constraints(network="unmetered")
        assert unmet_constraints(wifi_only, probe=probe) == []  # NM wins over empty sysfs

        calls = Counter()
        watcher = ConstraintWatcher(
            calls, poll_interval=3600, debounce=0.05, netlink=False, bus_factory=bus_factory
        )
        watcher.start()
        try:
            assert watcher.sources == ("networkmanager",)
            # start() returned after the bus confirmed the match rules: no race
            nm.change("Metered", ("u", 1))
            assert calls.event.wait(10), "no wake-up on NM PropertiesChanged"
        finally:
            watcher.stop()
        assert unmet_constraints(wifi_only, probe=probe) == [
            "network: metered unknown (source: networkmanager)"
        ]
    finally:
        nm.close()


def test_without_nm_on_the_bus_detection_falls_back(private_bus: str, machine: FakeMachine) -> None:
    from jeepney.io.blocking import open_dbus_connection

    machine.iface("wlp2s0", wireless=True)
    machine.default_route("wlp2s0")
    probe = DeviceProbe(
        sys_root=machine.sys,
        proc_root=machine.proc,
        data_dir=machine.data,
        bus_factory=lambda: open_dbus_connection(bus=private_bus),
    )
    state = read_device_state(probe=probe)
    assert (state.network.source, state.network.kind) == ("sysfs", "wifi")
    watcher = ConstraintWatcher(
        lambda: None, netlink=False, bus_factory=lambda: open_dbus_connection(bus=private_bus)
    )
    watcher.start()
    try:
        assert watcher.sources == ()
    finally:
        watcher.stop()
