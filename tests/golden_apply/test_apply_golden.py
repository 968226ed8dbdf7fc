"""Golden plan cases for ``vifscope apply --plan``: an apply file + the host's state → the
plan, compared with ``expected.txt`` (written by hand from the planning rules, never by
running vifscope) and the exit code ``--plan`` gives (0 nothing to change, 1 changes or
refused).

A case directory: ``file.yaml`` (the apply file, through the real loader and schema),
``state.yaml`` (the HostState: bridges, networks with their ``virsh net-dumpxml --inactive``
in ``networks/*.xml`` as captured from libvirt 9.0, link masters, OVS members),
``guests`` (each one's live and persistent NICs, with the verdict of live ones; a live NIC's
``qos``: who declares which rates, the verdict, and its tap as ``qos set`` plans from: dev,
ifindex, root qdisc kind, ingress, what vifscope created), ``shaping`` (the kernel's sfq /
police),
``expected.txt`` (first line ``exit: N``, then the plan as ``apply --plan`` prints it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from vifscope.actions.declare.docs import plan_lines
from vifscope.actions.declare.load import parse_desired
from vifscope.actions.declare.plan import plan_changes
from vifscope.model.desired import (
    BridgeKind,
    BridgeState,
    GuestState,
    HostState,
    NetworkState,
    QosState,
    VifKind,
    VifState,
)
from vifscope.model.host import Shaping
from vifscope.model.qos import BandwidthRate
from vifscope.model.qospolicy import Created, VifPolicy, VifSite

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
XML_DIR = "/run/vifscope/apply"


def load_state(case: Path) -> HostState:
    raw: dict[str, Any] = yaml.safe_load((case / "state.yaml").read_text()) or {}
    bridges = tuple(
        BridgeState(
            b["name"],
            BridgeKind(b["kind"]),
            b.get("mtu"),
            b.get("stp", False),
            b.get("up", True),
            tuple(b.get("ports", ())),
            b.get("datapath"),
        )
        for b in raw.get("bridges", ())
    )
    networks = tuple(
        NetworkState(
            n["name"],
            (case / "networks" / n["xml"]).read_text(),
            n["active"],
            n["autostart"],
            tuple((t, m) for t, m in n.get("taps", {}).items()),
        )
        for n in raw.get("networks", ())
    )
    guests = tuple(
        GuestState(g["name"], g["running"], g["persistent"], _live(g), _vifs(g.get("config", ())))
        for g in raw.get("guests", ())
    )
    shaping = Shaping(**raw["shaping"]) if "shaping" in raw else None
    return HostState(
        guests=guests,
        uri=raw.get("uri", "qemu:///system"),
        bridges=bridges,
        networks=networks,
        link_masters=tuple(raw.get("links", {}).items()),
        ovs_members=tuple(raw.get("ovs_members", {}).items()),
        ovs_available=raw.get("ovs_available", True),
        shaping=shaping,
    )


def _rate(raw: int | dict[str, int] | None) -> BandwidthRate | None:
    if raw is None or isinstance(raw, int):
        return None if raw is None else BandwidthRate(raw)
    return BandwidthRate(raw["average"], raw.get("peak"), raw.get("burst"))


def _qos(raw: dict[str, Any] | None, domain: str, mac: str, kind: str | None) -> QosState | None:
    if raw is None:
        return None
    backend, dev = raw.get("backend"), raw["dev"]
    inbound, outbound = _rate(raw.get("inbound")), _rate(raw.get("outbound"))
    made = raw.get("created")
    created = Created(dev, made.get("root", False), made.get("ingress", False), made.get("ifb")) if made else None
    policies = (VifPolicy(mac, inbound, outbound, "tc", created),) if backend == "tc" else ()
    links = frozenset([dev, *([made["ifb"]] if made and made.get("ifb") else [])])
    site = VifSite(
        domain, mac, dev, raw["ifindex"], raw.get("root"), raw.get("ingress", False), links,
        backend == "libvirt", kind or "bridge",
    )  # fmt: skip
    return QosState(backend, inbound, outbound, raw.get("verdict", "none"), site, policies, kind or "bridge")


def _live(guest: dict[str, Any]) -> tuple[VifState, ...]:
    """The live NICs; each one's QoS sees all the guest's tc policies (the domain's metadata)."""
    vifs = _vifs(guest.get("live", ()), guest["name"])
    policies = tuple(p for v in vifs if v.qos for p in v.qos.policies)
    return tuple(replace(v, qos=replace(v.qos, policies=policies)) if v.qos else v for v in vifs)


def _vifs(raw: list[dict[str, Any]], domain: str = "") -> tuple[VifState, ...]:
    return tuple(
        VifState(
            v["mac"],
            VifKind(v["kind"]) if v.get("kind") else None,
            v.get("source"),
            v.get("model"),
            v.get("status"),
            v.get("isolated", False),
            v.get("nwfilter"),
            _qos(v.get("qos"), domain, v["mac"], v.get("kind")),
        )
        for v in raw
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_matches_the_hand_written_one(case: Path) -> None:
    desired = parse_desired((case / "file.yaml").read_text())
    plan = plan_changes(desired, load_state(case), XML_DIR)
    head, _, body = (case / "expected.txt").read_text().partition("\n")
    code = 1 if (plan.changes or plan.refused) else 0
    assert f"exit: {code}" == head
    assert plan_lines(plan) == body.rstrip("\n").split("\n")


def test_there_are_cases_for_every_object_kind_and_edit() -> None:
    names = {c.name for c in CASES}
    for want in ("linux-bridge-create", "linux-bridge-mtu", "ovs-bridge-create", "network-create",
                 "network-dhcp-change", "nothing-to-do", "qos-add", "qos-change-rate", "qos-clear",
                 "qos-unchanged", "qos-tc-add", "qos-libvirt-refused"):  # fmt: skip
        assert want in names
