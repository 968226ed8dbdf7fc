"""Build a deep HostSnapshot from a golden-checks case directory, through the real parsers.

Layout (see README.md): the binding inputs of tests/golden (domains, networks, links, ovs)
plus ``facts/`` with the raw output of each deep source. A missing facts file means that
source failed (its part of HostFacts is None), exactly as in a live deep snapshot.

A case may name a ``base`` case: files it does not have are read from the base, and
``patch`` edits JSON files (patch.py; so a fault case shows exactly what it changes). Its
expected.json may then inherit the base's expected findings and state only the difference.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.golden.backends import replay_backends
from tests.golden_checks.patch import PatchError, apply_patch
from tests.golden_qos.tcbuild import shaping
from vifscope.model import (
    AddressSource,
    DeviceNode,
    DeviceNodes,
    DomainRuntime,
    DomainState,
    Firewall,
    GuestAddress,
    HostFacts,
    HostSnapshot,
    NetworkRuntime,
    SourceError,
    Sysctls,
)
from vifscope.model.flows import FlowMapFill, FlowSupport
from vifscope.model.host import Qdisc
from vifscope.model.qos import OvsQos, RootQdisc, TcShaping
from vifscope.model.qosdscp import DscpMark
from vifscope.sources.kernel.firewall import merge, parse_iptables_save, parse_nft_ruleset
from vifscope.sources.kernel.iproute import parse_addresses, parse_neighbors, parse_qdiscs
from vifscope.sources.kernel.kconfig import parse_kernel_config
from vifscope.sources.kernel.links import parse_links
from vifscope.sources.kernel.nftdscp import parse_dscp_table
from vifscope.sources.kernel.procfs import read_sysctls
from vifscope.sources.libvirt.domxml import parse_domain_xml
from vifscope.sources.libvirt.facts import parse_lease
from vifscope.sources.libvirt.factxml import (
    parse_binding_xml,
    parse_domain_extras,
    parse_network_port_isolated,
    parse_nwfilter_xml,
)
from vifscope.sources.libvirt.guestip import merge_guest_addresses
from vifscope.sources.libvirt.netxml import parse_network_xml
from vifscope.sources.ovs import parse_ovs_tables
from vifscope.sources.ovsqos import parse_ovs_qos_output

CASES_DIR = Path(__file__).resolve().parent / "cases"


@dataclass(frozen=True)
class Case:
    name: str
    meta: dict[str, Any]
    snap: HostSnapshot
    expected: list[dict[str, Any]]


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class ExpectedError(ValueError):
    """An expected.json that inherits wrongly: another base than the case's, a removal without a
    reason, or a removal of a finding the base does not expect."""


KEYS = ("check", "severity", "domain", "subject")


def _key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(entry[k] for k in KEYS)


def expected_findings(path: Path) -> list[dict[str, Any]]:
    """Every finding a case expects. expected.json is either that whole list, or
    ``{"inherit": BASE, "remove": [...], "add": [...]}``: BASE's expected findings minus each
    removed one (matched on check/severity/domain/subject, each with its "why"), plus the added."""
    doc = _json(path / "expected.json")
    if isinstance(doc, list):
        return list(doc)
    if unknown := set(doc) - {"inherit", "remove", "add"}:
        raise ExpectedError(f"{path.name}: unknown key(s) {sorted(unknown)} in expected.json")
    if doc.get("inherit") != _json(path / "case.json").get("base"):
        raise ExpectedError(f"{path.name}: expected.json inherits {doc.get('inherit')!r}, not the case's base")
    out = expected_findings(CASES_DIR / doc["inherit"])
    for gone in doc.get("remove", []):
        if not gone.get("why"):
            raise ExpectedError(f"{path.name}: removal without a why: {gone}")
        hit = next((e for e in out if _key(e) == _key(gone)), None)
        if hit is None:
            raise ExpectedError(f"{path.name}: {doc['inherit']} does not expect {gone}")
        out.remove(hit)
    added: list[dict[str, Any]] = doc.get("add", [])
    return out + added


@dataclass(frozen=True)
class Files:
    """A case directory over its optional base: own files win; patches edit JSON files.
    ``applied`` records which patched files were read, so a patch nothing reads is an error."""

    path: Path
    base: Path | None
    patches: dict[str, Any]
    applied: set[str] = field(default_factory=set)

    def _exists(self, rel: str) -> bool:
        return any(root is not None and (root / rel).exists() for root in (self.path, self.base))

    def find(self, rel: str) -> Path | None:
        if self.patches.get(rel) == "delete":
            return None
        for root in (self.path, self.base):
            if root is not None and (root / rel).exists():
                return root / rel
        return None

    def json(self, rel: str) -> Any:
        found = self.find(rel)
        if found is None:
            return None
        ops = self.patches.get(rel)
        if not isinstance(ops, list):
            return _json(found)
        self.applied.add(rel)
        return apply_patch(_json(found), ops)

    def text(self, rel: str) -> str:
        found = self.find(rel)
        assert found is not None, f"{self.path.name}: {rel} missing"
        return found.read_text(encoding="utf-8")

    def xml_dir(self, rel: str) -> list[str] | None:
        """Every *.xml of a directory (the case's replaces the base's); None when neither has it."""
        found = self.find(rel)
        return [p.read_text(encoding="utf-8") for p in sorted(found.glob("*.xml"))] if found else None

    def check_patches(self) -> None:
        """Every patched file exists; every list of ops was applied (ovs.json and XML are not
        read as JSON documents: a patch there would be ignored)."""
        for rel, ops in self.patches.items():
            if not self._exists(rel):
                raise PatchError(f"{self.path.name}: patch for {rel}, which neither the case nor its base has")
            if ops != "delete" and rel not in self.applied:
                raise PatchError(f"{self.path.name}: patch for {rel} was never applied (not a JSON document read)")


def _sysctls(doc: dict[str, str] | None) -> Sysctls | None:
    """Write the values as a /proc/sys tree and read it back with the real reader."""
    if doc is None:
        return None
    with tempfile.TemporaryDirectory(prefix="vs-golden-sysctl-") as tmp:
        for key, value in doc.items():
            (Path(tmp) / key).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / key).write_text(value + "\n")
        return read_sysctls(Path(tmp))


def _devices(doc: dict[str, Any] | None) -> DeviceNodes | None:
    if doc is None:
        return None
    nodes = {k: DeviceNode(**doc[k]) for k in ("tun", "vhost_net", "kvm")}
    return DeviceNodes(
        **nodes, kvm_api_version=doc.get("kvm_api_version"), cpu_virt_extensions=doc.get("cpu_virt_extensions")
    )


def _firewall(files: Files) -> Firewall | None:
    nft = files.json("facts/nft.json")
    if nft is None:
        return None
    parts = [parse_nft_ruleset(nft)]
    if files.find("facts/iptables-legacy.txt"):
        parts.append(parse_iptables_save(files.text("facts/iptables-legacy.txt")))
    return merge(parts)


def _runtime(
    doc: dict[str, Any] | None, dom_xml: dict[str, str], net_xml: dict[str, str]
) -> tuple[tuple[DomainRuntime, ...] | None, tuple[NetworkRuntime, ...] | None]:
    if doc is None:
        return None, None
    doms = []
    for d in doc["domains"]:
        vtype, _ = parse_domain_extras(dom_xml[d["name"]], d["name"])
        started = datetime.fromisoformat(d["started_at"]) if d.get("started_at") else None
        doms.append(DomainRuntime(d["name"], d.get("uuid", ""), vtype, d.get("pid"), started, d.get("vhost_fds")))
    nets = tuple(
        NetworkRuntime(
            n["name"], n.get("dnsmasq_pid"), n.get("dnsmasq_running"), parse_network_port_isolated(net_xml[n["name"]])
        )
        for n in doc["networks"]
    )
    return tuple(doms), nets


def _facts(files: Files, macs: list[str], dom_xml: dict[str, str], net_xml: dict[str, str]) -> HostFacts:
    leases_doc = files.json("facts/leases.json")
    leases = tuple(parse_lease(net, raw) for net, raws in (leases_doc or {}).items() for raw in raws)
    neigh_doc = files.json("facts/neigh.json")
    neighbors = parse_neighbors(neigh_doc) if neigh_doc is not None else None
    agent = [
        GuestAddress(a["mac"], a["ip"], AddressSource.AGENT, a.get("domain", ""))
        for a in files.json("facts/agent.json") or []
    ]
    dom_rt, net_rt = _runtime(files.json("facts/runtime.json"), dom_xml, net_xml)
    tc, addr = files.json("facts/tc.json"), files.json("facts/addr.json")
    bindings, filters = files.xml_dir("facts/nwfilter-bindings"), files.xml_dir("facts/nwfilters")
    return HostFacts(
        sysctls=_sysctls(files.json("facts/sysctl.json")),
        devices=_devices(files.json("facts/devices.json")),
        qdiscs=parse_qdiscs(tc) if tc is not None else None,
        neighbors=neighbors,
        addresses=parse_addresses(addr) if addr is not None else None,
        leases=leases if leases_doc is not None else None,
        guest_addresses=merge_guest_addresses(macs, agent, leases, neighbors or ()),
        nwfilter_bindings=tuple(parse_binding_xml(x) for x in bindings or ()),
        nwfilters=tuple(parse_nwfilter_xml(x) for x in filters) if filters is not None else None,
        firewall=_firewall(files),
        network_runtime=net_rt,
        domain_runtime=dom_rt,
        interface_extras=tuple(e for name, text in dom_xml.items() for e in parse_domain_extras(text, name)[1]),
        tc_shaping=_tc_shaping(files, parse_qdiscs(tc) if tc is not None else None),
        flows=_flows(files),
        kernel_shaping=parse_kernel_config(files.text(KCONFIG)) if files.find(KCONFIG) else None,
        ovs_qos=_ovs_qos(files),
        dscp_marks=_dscp_marks(files),
    )


def _flows(files: Files) -> FlowSupport | None:
    """facts/flows.json: FlowSupport's fields; ``maps`` a list of FlowMapFill fields."""
    if not files.find("facts/flows.json"):
        return None
    doc = dict(files.json("facts/flows.json"))
    maps = doc.pop("maps", None)
    fills = tuple(FlowMapFill(**{**m, "argv": tuple(m.get("argv", ()))}) for m in maps) if maps is not None else None
    return FlowSupport(**doc, maps=fills)


def _ovs_qos(files: Files) -> tuple[OvsQos, ...] | None:
    """``facts/ovs-qos.json``: the four JSON lines of read_ovs_qos's ovs-vsctl call (absent:
    OVSDB's QoS rows were not read, so OVS ports are not judged)."""
    found = files.find("facts/ovs-qos.json")
    return parse_ovs_qos_output(found.read_text(encoding="utf-8")) if found is not None else None


def _dscp_marks(files: Files) -> tuple[DscpMark, ...] | None:
    """``facts/nft-dscp.txt``: ``nft list table netdev vifscope_qos``. Absent: the table does not
    exist (no marks) when nft itself answered (facts/nft.json), else nft is unavailable."""
    found = files.find("facts/nft-dscp.txt")
    if found is not None:
        return tuple(parse_dscp_table(found.read_text(encoding="utf-8")).values())
    return () if files.find("facts/nft.json") is not None else None


KCONFIG = "facts/kconfig.txt"  # the CONFIG_ lines of /proc/config.gz (absent: the kernel has none)


def _tc_shaping(files: Files, qdiscs: tuple[Qdisc, ...] | None) -> TcShaping | None:
    """``facts/tc-shaping.txt`` (tc command lines, as the kernel would dump their objects:
    tests/golden_qos/tcbuild.py), else the root qdiscs of ``facts/tc.json`` alone (no class or
    police filter: ``tc -j`` prints no htb class)."""
    lines = files.find("facts/tc-shaping.txt")
    if lines is not None:
        return shaping(lines.read_text(encoding="utf-8").splitlines())
    if qdiscs is None:
        return None
    return TcShaping(roots=tuple(RootQdisc(q.dev, q.kind) for q in qdiscs if q.root))


def load_case(path: Path) -> Case:
    meta = _json(path / "case.json")
    files = Files(path, CASES_DIR / meta["base"] if meta.get("base") else None, meta.get("patch", {}))
    vifs, dom_xml = [], {}
    for dom in files.json("domains.json"):
        text = files.text(f"domains/{dom['file']}")
        dom_xml[dom["file"].removesuffix(".xml")] = text
        vifs.extend(parse_domain_xml(text, DomainState(dom["state"])))
    networks, net_xml = [], {}
    for net in files.json("networks.json") or []:
        text = files.text(f"networks/{net['file']}")
        parsed = parse_network_xml(text, active=net["active"], autostart=net["autostart"], leases=net.get("leases"))
        networks.append(parsed)
        net_xml[parsed.name] = text
    ovs_file = files.find("ovs.json")
    ovs = None
    if ovs_file is not None:
        lines = ovs_file.read_text(encoding="utf-8").splitlines()
        ovs = parse_ovs_tables([json.loads(line) for line in lines if line.strip()])
    errors = tuple(SourceError(e["source"], e["error"], e.get("hint", "")) for e in meta.get("source_errors", []))
    has_facts = files.find("facts") is not None
    links = files.json("links.json")
    backends, backend_errors = replay_backends(path, vifs, networks, links, "qemu:///system")  # the case's own only
    snap = HostSnapshot(
        host="golden-host",
        uri="qemu:///system",
        taken_at=datetime.fromisoformat(meta["taken_at"]),
        vifs=tuple(vifs),
        links=parse_links(links),
        ovs_ports=ovs.ports if ovs else (),
        ovs_bridges=ovs.bridges if ovs else (),
        ovs_available=ovs is not None,
        networks=tuple(networks),
        errors=(*errors, *backend_errors),
        facts=_facts(files, [v.mac for v in vifs if v.mac], dom_xml, net_xml) if has_facts else None,
        backends=backends,
    )
    files.check_patches()
    return Case(path.name, meta, snap, expected_findings(path))
