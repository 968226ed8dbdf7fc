"""``vifscope apply``'s pure parts: the file loader's one-line errors, the shipped schema,
export's round trip (export → plan: nothing to change), and rollback's target (the
checkpoint read back as a file) planned against a host left half-changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.golden_apply.test_apply_golden import load_state
from vifscope.actions.declare.docs import plan_lines
from vifscope.actions.declare.export import export_doc, restore_target
from vifscope.actions.declare.load import LoadError, parse_desired, schema_text
from vifscope.actions.declare.plan import plan_changes
from vifscope.model.desired import BridgeKind, BridgeState, GuestState, HostState, NetworkState, VifKind, VifState

CASES = Path(__file__).resolve().parents[1] / "golden_apply" / "cases"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("bridges:\n  - name: x\n    mtu: big\n", "bridges[0].mtu: 'big' is not of type 'integer'"),
        ("bridges:\n  - {name: x, colour: red}\n", "bridges[0]: Additional properties are not allowed ('colour' was"),
        ("networks:\n  - {name: n, mode: bridge, bridge: b, ipv4: {address: 10.0.0.1/24}}\n", "networks[0].ipv4: a "),
        ("networks:\n  - {name: n, mode: bridge}\n", "networks[0]: a bridge-mode network needs bridge:"),
        (
            "networks:\n  - {name: n, ipv4: {address: 10.0.0.1/24, dhcp: [10.0.0.9, 10.0.1.9]}}\n",
            "networks[0].ipv4.dhcp[1]: 10.0.1.9 is not in 10.0.0.0/24",
        ),
        ("networks:\n  - {name: n, ipv4: {address: 10.0.0.1/24, dhcp: [10.0.0.9, 10.0.0.2]}}\n", "comes after"),
        ("networks:\n  - {name: n, ipv4: {address: 10.0.0.300/24}}\n", "networks[0].ipv4:"),
        ("bridges:\n  - {name: a}\n  - {name: a}\n", "bridges[1].name: 'a' is declared twice"),
        ("bridges:\n  - {name: 'has space'}\n", "bridges[0].name: 'has space' does not match"),
        (
            "domains:\n  web1:\n    interfaces:\n      - {mac: '52:54:00:00:00:01', pool: p, network: n}\n",
            "domains.web1.interfaces[0].pool: is for mac: auto",
        ),
        (
            "domains:\n  web1:\n    interfaces:\n      - {mac: '52:54:00:00:00:01', network: n, qos: {}}\n",
            "domains.web1.interfaces[0].qos: want none (clear the rates) or {inbound: RATE",
        ),
        (
            "domains:\n  web1:\n    interfaces:\n"
            "      - {mac: '52:54:00:00:00:01', network: n, qos: {inbound: 5, backend: x}}\n",
            "domains.web1.interfaces[0].qos: want none",
        ),
        (
            "domains:\n  web1:\n    interfaces:\n"
            "      - {mac: '52:54:00:00:00:01', network: n, qos: {inbound: {average: 5, peak: 2}}}\n",
            "domains.web1.interfaces[0].qos.inbound.peak: 2 is below the average 5",
        ),
        (
            "domains:\n  web1:\n    interfaces:\n      - {mac: '52:54:00:00:00:01', state: absent, qos: none}\n",
            "domains.web1.interfaces[0].qos: a NIC to unplug has no QoS to set",
        ),
        (
            "domains:\n  web1:\n    interfaces:\n      - {mac: '52:54:00:00:00:01', network: n, bridge: b}\n",
            "domains.web1.interfaces[0]: give exactly one of network, bridge, ovs",
        ),
        ("domains:\n  web1:\n    interfaces:\n      - {mac: '53:54:00:00:00:01', bridge: b}\n", "multicast"),
        ("bridges: [\n", "line 2: not valid YAML"),
        ("- 1\n", "(top): [1] is not of type 'object'"),
    ],
)
def test_an_invalid_file_is_one_line_naming_where(text: str, error: str) -> None:
    with pytest.raises(LoadError) as caught:
        parse_desired(text)
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_empty_file_declares_nothing() -> None:
    assert parse_desired("").names == ((), ())


def test_the_shipped_schema_is_json_and_names_every_field_the_loader_reads() -> None:
    schema = json.loads(schema_text())
    bridge = {"name", "state", "kind", "uplinks", "stp", "mtu", "datapath", "up"}
    assert set(schema["$defs"]["bridge"]["properties"]) == bridge
    assert {"mode", "bridge", "ipv4", "devices", "autostart", "active"} <= set(schema["$defs"]["network"]["properties"])


@pytest.mark.parametrize(
    "case", ["nothing-to-do", "network-dhcp-change", "ovs-bridge-create", "removals", "qos-clear", "qos-change-rate"]
)
def test_export_then_plan_changes_nothing(case: str) -> None:
    state = load_state(CASES / case)
    doc, skipped = export_doc(state)
    assert skipped == ()
    again = parse_desired(yaml.safe_dump(doc))  # the export is a valid apply file
    assert plan_changes(again, state).changes == ()


def test_export_leaves_out_the_bridges_libvirt_networks_own() -> None:
    doc, _ = export_doc(load_state(CASES / "nothing-to-do"))
    assert [b["name"] for b in doc["bridges"]] == ["br-prod", "ovs0"]  # not virbr-a
    assert doc["networks"][0]["ipv4"] == {"address": "10.50.0.1/24", "dhcp": ["10.50.0.100", "10.50.0.200"]}


def _half_changed(checkpoint: HostState) -> HostState:
    """The host after a failed apply of network-dhcp-change's file plus a new bridge and an
    extra uplink: the bridge made, an uplink moved, the network redefined but stopped."""
    net = checkpoint.networks[0]
    new_xml = net.xml.replace("10.50.0.100", "10.50.0.50")
    return HostState(
        checkpoint.uri,
        bridges=(
            BridgeState("br-new", BridgeKind.LINUX, 1500, False, True),
            BridgeState("br-prod", BridgeKind.LINUX, 9000, False, True, ("eth1", "eth7")),
        ),
        networks=(NetworkState(net.name, new_xml, False, net.autostart, (("vnet1", None), ("vnet2", None))),),
        link_masters=(("eth1", "br-prod"), ("eth7", "br-prod"), ("vnet1", None), ("vnet2", None)),
    )


def test_rollback_restores_exactly_the_checkpoint() -> None:
    before = load_state(CASES / "network-dhcp-change")
    before = HostState(
        before.uri,
        bridges=(BridgeState("br-prod", BridgeKind.LINUX, 1500, False, True, ("eth1",)),),
        networks=before.networks,
        link_masters=(("eth1", "br-prod"), ("eth7", None), *before.link_masters),
    )
    desired = parse_desired(
        "bridges:\n  - {name: br-new}\n  - {name: br-prod, uplinks: [eth1, eth7], mtu: 9000}\n"
        "networks:\n  - {name: tenant-a, ipv4: {address: 10.50.0.1/24, dhcp: [10.50.0.50, 10.50.0.99]}}\n"
    )
    target = restore_target(before.only(desired), desired)
    lines = plan_lines(plan_changes(target, _half_changed(before), "/x"))
    assert lines[:6] == [
        "- bridge br-new (remove): remove linux bridge",
        "    ip link del dev br-new",
        "~ bridge br-prod (change): port eth7 leaves; mtu 9000 → 1500",
        "    ip link set dev eth7 nomaster",
        "    ip link set dev br-prod mtu 1500",
        "~ network tenant-a (change): definition as in the checkpoint; start; re-plug 2 guest tap(s)",
    ]
    assert "    write /x/tenant-a.xml" in lines
    assert lines[-4:] == [
        "    virsh -c qemu:///system net-start tenant-a",
        "    ip link set dev vnet1 master virbr-a",
        "    ip link set dev vnet2 master virbr-a",
        "3 changes to apply",
    ]
    # and once restored, rollback's own verification finds nothing left
    assert plan_changes(target, before).changes == ()


def test_export_writes_every_guests_managed_nics_from_the_snapshot() -> None:
    from datetime import UTC, datetime

    from vifscope.model import DeclaredVif, DomainState, HostSnapshot
    from vifscope.sources.hoststate import guests_in

    run, off = DomainState.RUNNING, DomainState.SHUTOFF
    vifs = (
        DeclaredVif("web1", "u1", run, 0, "network", "52:54:00:00:00:01", "virtio", "n1", network="n1"),
        DeclaredVif("web1", "u1", run, 1, "bridge", "52:54:00:00:00:02", "e1000", "ovs0", virtualport="openvswitch"),
        DeclaredVif("web1", "u1", run, 2, "direct", "52:54:00:00:00:03", "virtio", "eth1"),  # not managed
        DeclaredVif("db1", "u2", off, 0, "bridge", "52:54:00:00:00:04", None, "br0"),
    )
    snap = HostSnapshot("h", "qemu:///system", datetime.now(UTC), vifs=vifs)
    doc, _ = export_doc(HostState("qemu:///system", guests=guests_in(snap)))
    assert doc["domains"] == {
        "db1": {"interfaces": [{"mac": "52:54:00:00:00:04", "bridge": "br0", "model": "virtio"}]},
        "web1": {
            "interfaces": [
                {"mac": "52:54:00:00:00:01", "network": "n1", "model": "virtio"},
                {"mac": "52:54:00:00:00:02", "ovs": "ovs0", "model": "e1000"},
            ]
        },
    }
    assert parse_desired(yaml.safe_dump(doc)).domain_names == ("db1", "web1")


def test_a_tap_the_same_plan_unplugs_is_not_re_plugged_after_the_network_restart() -> None:
    """Found on the lab: unplug web1's NIC and change its network in one file; the restart's
    re-plug must not name the tap the unplug removed first (it is gone by then)."""
    state = load_state(CASES / "network-dhcp-change")
    net = state.networks[0]
    state = HostState(
        state.uri,
        networks=(NetworkState(net.name, net.xml, True, True, net.taps, (("vnet1", "52:54:00:10:00:07"),)),),
        link_masters=state.link_masters,
        guests=(GuestState("web1", True, False, (VifState("52:54:00:10:00:07", VifKind.NETWORK, "tenant-a"),)),),
    )
    desired = parse_desired(
        (CASES / "network-dhcp-change" / "file.yaml").read_text()
        + "domains:\n  web1:\n    interfaces:\n      - {mac: '52:54:00:10:00:07', state: absent}\n"
    )
    lines = plan_lines(plan_changes(desired, state, "/x"))
    assert lines[0] == "- vif web1 52:54:00:10:00:07 (remove): unplug (network tenant-a)"
    assert "    ip link set dev vnet2 master virbr-a" in lines
    assert "    ip link set dev vnet1 master virbr-a" not in lines
