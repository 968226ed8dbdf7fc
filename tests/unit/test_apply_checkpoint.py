"""The pending --confirm-within checkpoint survives JSON (every field: rollback-only ``xml``
and ``exact`` too, enums, tuples, absent objects), and a damaged pending file is said so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vifscope.actions.declare.checkpoint import desired_from_json, desired_to_json
from vifscope.actions.declare.pending import Pending, PendingError, PendingStore
from vifscope.model.desired import (
    BridgeKind,
    BridgeSpec,
    Desired,
    DomainSpec,
    Ipv4,
    NetMode,
    NetworkSpec,
    QosSpec,
    VifKind,
    VifSpec,
)
from vifscope.model.qos import BandwidthRate

TARGET = Desired(
    (
        BridgeSpec("br0", BridgeKind.LINUX, True, ("eth1", "eth2"), False, 9000, None, True, exact=True),
        BridgeSpec("ovs0", BridgeKind.OVS, present=False),
    ),
    (
        NetworkSpec("n1", autostart=False, active=True, xml="<network><name>n1</name></network>"),
        NetworkSpec("n2", mode=NetMode.ISOLATED, bridge="virbr9", ipv4=Ipv4("10.0.0.1/24", ("10.0.0.5", "10.0.0.9"))),
        NetworkSpec("n3", mode=NetMode.MACVTAP, devices=("eth3",), ipv4=Ipv4("10.1.0.1/24")),
        NetworkSpec("n4", present=False),
    ),
    (
        DomainSpec(
            "web1",
            (
                VifSpec("52:54:00:00:00:01", VifKind.OVS, "ovs0", "e1000", True, True, ""),
                VifSpec("52:54:00:00:00:02", present=False),
                VifSpec("52:54:00:00:00:03", VifKind.NETWORK, "n1", qos=QosSpec(BandwidthRate(10), None, "tc")),
                VifSpec("52:54:00:00:00:04", VifKind.NETWORK, "n1", qos=QosSpec(None, BandwidthRate(5, 9, 2))),
                VifSpec("52:54:00:00:00:05", VifKind.NETWORK, "n1", qos=QosSpec()),
            ),
        ),
    ),
)


def test_round_trip_through_json_text() -> None:
    assert desired_from_json(json.loads(json.dumps(desired_to_json(TARGET)))) == TARGET


def test_store_writes_reads_and_refuses_a_damaged_file(tmp_path: Path) -> None:
    store = PendingStore(tmp_path)
    pending = Pending("run1", "qemu:///system", 123.5, TARGET, "/tmp/a.jsonl", "/tmp", 2.0)
    with store.locked():
        assert store.read() is None
        store.write(pending)
        assert store.read() == pending
    store.file.write_text('{"run": "x"}')
    with pytest.raises(PendingError, match="damaged"):
        store.read()
    store.remove()
    assert store.read() is None
