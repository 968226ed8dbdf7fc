"""The engine applying effects: every source faked by plain functions over a small world,
the clock scripted, the printed JSON lines judged."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any, get_args

import pytest

from tests.unit.ipjson import bridge, snapshot, tap
from tests.unit.test_watch_state import vif
from vifscope.model import DeclaredVif, HostSnapshot, LibvirtNetwork, ObservedLink, SourceError, VifBinding
from vifscope.sources.kernel.links import parse_links
from vifscope.sources.ovs import OvsState
from vifscope.watch import daemon
from vifscope.watch.config import WatchConfig
from vifscope.watch.effects import Effect
from vifscope.watch.events import LinkBatch, LinkEvent, SourceDown, Stop, WatchEvent
from vifscope.watch.healing import HealResult
from vifscope.watch.live import FullRead
from vifscope.watch.output import Printer
from vifscope.watch.policy import HealPolicy

WEB1 = vif("web1", "vnet0")


class World:
    """The host the fakes read: links by name, libvirt up or not; and the scripted clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.links: dict[str, dict[str, Any]] = {"br0": bridge("br0"), "vnet0": tap("vnet0", master="br0")}
        self.libvirt_up = True

    def snap(self) -> HostSnapshot:
        return snapshot([WEB1], list(self.links.values()))

    def read_links(self) -> tuple[tuple[ObservedLink, ...] | None, SourceError | None]:
        return parse_links(list(self.links.values())), None


class FakeLibvirt:
    """LibvirtWatcher's reads, answered from the world."""

    def __init__(self, world: World) -> None:
        self.world = world

    def connect(self) -> str:
        return "testhost"

    def domain_vifs(self, uuid: str) -> tuple[DeclaredVif, ...] | None:
        return (WEB1,) if uuid == WEB1.domain_uuid else None

    def networks(self) -> tuple[LibvirtNetwork, ...]:
        return ()

    def drop(self) -> None:
        self.world.libvirt_up = False

    def close(self) -> None:
        pass


class Idle:
    """A monitor thread or event loop that posts nothing."""

    def __init__(self, *_args: object) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    @staticmethod
    def ensure() -> None:
        pass


class Plugger:
    """A healer that does what heal_actions would: plug each tap into its declared bridge."""

    def __init__(self, world: World) -> None:
        self.world = world

    def heal(self, _snap: HostSnapshot, bindings: Sequence[VifBinding], *, dry_run: bool) -> list[HealResult]:
        out = []
        for b in bindings:
            assert b.vif.target and b.expect.bridge and not dry_run
            self.world.links[b.vif.target] = tap(b.vif.target, master=b.expect.bridge)
            out.append(HealResult(b, "ok", (f"ip link set {b.vif.target} master {b.expect.bridge}",)))
        return out


Step = WatchEvent | float | Callable[[], None]  # an event, seconds passing, or a change to the world


class ScriptedWatch(daemon.Watch):
    """The engine, its queue replaced by a script (the clock moves only when it says so)."""

    def __init__(self, world: World, script: list[Step], out: io.StringIO) -> None:
        policy = HealPolicy(grace=0.2)
        options = daemon.WatchOptions(uri="test:///x", config=WatchConfig(heal=policy), healer=Plugger(world))
        super().__init__(options, Printer(True, out), clock=lambda: world.now)
        self.world, self.script = world, script

    def _next_event(self) -> WatchEvent | None:
        while self.script:
            item = self.script.pop(0)
            if isinstance(item, float):
                self.world.now += item
                return None
            if callable(item):
                item()
                continue
            return item
        return Stop("SIGTERM")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    monkeypatch.setattr(daemon, "LibvirtWatcher", lambda _uri, _post: FakeLibvirt(w))
    monkeypatch.setattr(daemon, "full_read", lambda _uri, _prev, _worker=None: FullRead(w.snap(), None))
    monkeypatch.setattr(daemon, "links_or_error", w.read_links)
    monkeypatch.setattr(daemon, "ovs_or_error", lambda: (None, None))
    for name in ("LinkWatch", "OvsMonitor", "EventLoop"):
        monkeypatch.setattr(daemon, name, Idle)
    return w


def run(world: World, script: list[Step]) -> list[dict[str, Any]]:
    out = io.StringIO()
    watch = ScriptedWatch(world, script, out)
    watch.start()
    assert watch.run() == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def said(lines: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    """What each line says, without its clock."""
    keys = {"transition": ("to", "cause"), "heal": ("target", "result"), "source": ("source", "state")}
    return [(d["event"], *(d[k] for k in keys.get(d["event"], ()))) for d in lines]


def test_every_effect_has_an_applier() -> None:
    assert set(daemon.APPLY) == set(get_args(Effect))


def test_detach_is_reported_then_healed_after_the_grace(world: World) -> None:
    def detach() -> None:
        world.links["vnet0"] = tap("vnet0")

    burst = LinkBatch((LinkEvent("new", 7, "vnet0"),))
    lines = run(world, [detach, burst, 0.05, 0.1, 0.15])
    assert said(lines) == [
        ("start",),
        ("transition", "detached", "netlink"),
        ("heal", "vnet0", "ok"),
        ("transition", "bound", "heal"),
        ("stop",),
    ]
    assert lines[2]["commands"] == ["ip link set vnet0 master br0"]


def test_no_heal_while_libvirt_is_down(world: World) -> None:
    def detach() -> None:
        world.links["vnet0"] = tap("vnet0")

    lost = SourceDown("libvirt", "libvirt connection closed: end of file")
    burst = LinkBatch((LinkEvent("new", 7, "vnet0"),))
    lines = run(world, [lost, detach, burst, 0.05, 0.2, 0.2])  # past the grace, short of the reconnect (0.5 s)
    assert said(lines) == [
        ("start",),
        ("source", "libvirt", "down"),
        ("transition", "detached", "netlink"),
        ("stop",),
    ]
    assert not world.libvirt_up  # the connection was dropped, and the reconnect is still ahead


def test_a_lost_ovsdb_is_taken_from_the_monitor(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor found ovsdb-server silent past its echo (hung). ovs-vsctl would only wait out
    its timeout (here it would even say all is well): the engine takes the monitor's word."""
    monkeypatch.setattr(daemon, "ovs_or_error", lambda: (OvsState((), ()), None))
    hung = "ovsdb-server at /run/openvswitch/db.sock did not answer an echo within 5 s (hung?)"
    lines = run(world, [SourceDown("ovs", hung)])
    assert said(lines) == [("start",), ("source", "ovs", "down"), ("stop",)]
    assert lines[1]["error"] == hung and "ovsdb-server" in lines[1]["hint"]
