"""Every parser vifscope reads host input with, as a fuzz target: its seed inputs (the libvirt
corpus and the golden cases' captured dumps), its mutator, and the typed errors it documents.

A target's ``run`` either returns or raises one of its ``allowed`` errors; anything else is a
crash. Seeds are read once per process (``seeds()`` is cached).
"""

from __future__ import annotations

import functools
import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fuzz import netlink
from tests.fuzz.mutate import mutate_bytes, mutate_json, mutate_json_lines, mutate_lines, mutate_xml
from tests.golden_checks.loader import CASES_DIR, Files
from tests.golden_qos.tcbuild import Host
from vifscope.model import DomainState
from vifscope.sources.jsonshape import JsonShapeError
from vifscope.sources.kernel.firewall import parse_iptables_save, parse_nft_ruleset
from vifscope.sources.kernel.iproute import parse_addresses, parse_neighbors, parse_qdiscs
from vifscope.sources.kernel.linkdump import parse_dump
from vifscope.sources.kernel.links import parse_links
from vifscope.sources.kernel.sriov import vf_tables_from_dump
from vifscope.sources.kernel.tcdump import parse_neigh_dump, parse_qdisc_dump
from vifscope.sources.kernel.tcshaping import parse_classes, parse_police_filters, parse_redirects
from vifscope.sources.kernel.tcshaping import parse_qdiscs as parse_qdiscs_rtnl
from vifscope.sources.kernel.unixsock import parse_proc_net_unix
from vifscope.sources.libvirt.domxml import DomainXmlError, parse_domain
from vifscope.sources.libvirt.factxml import (
    FactXmlError,
    parse_binding_xml,
    parse_domain_extras,
    parse_network_port_isolated,
    parse_nwfilter_xml,
)
from vifscope.sources.libvirt.netxml import NetworkXmlError, parse_network_xml
from vifscope.sources.ovs import OvsError, parse_ovs_output
from vifscope.sources.ovsqos import parse_ovs_qos_output

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


@dataclass(frozen=True)
class Target:
    name: str
    seeds: Callable[[], Sequence[Any]]
    mutate: Callable[[random.Random, Any], Any]
    run: Callable[[Any], object]
    allowed: tuple[type[Exception], ...]


def _case_files() -> list[Files]:
    out = []
    for path in sorted(p for p in CASES_DIR.iterdir() if p.is_dir()):
        meta = json.loads((path / "case.json").read_text())
        out.append(Files(path, CASES_DIR / meta["base"] if meta.get("base") else None, meta.get("patch", {})))
    return out


def _distinct(items: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for item in items:
        seen.setdefault(json.dumps(item, sort_keys=True), item)
    return list(seen.values())


@functools.cache
def golden_json(rel: str) -> tuple[Any, ...]:
    """Every distinct version of one golden JSON file, with each case's patch applied."""
    return tuple(_distinct([d for f in _case_files() if (d := f.json(rel)) is not None]))


@functools.cache
def golden_texts(pattern: str) -> tuple[str, ...]:
    return tuple(sorted({p.read_text(encoding="utf-8") for p in CASES_DIR.glob(f"*/{pattern}")}))


@functools.cache
def domain_seeds() -> tuple[str, ...]:
    corpus = [p.read_text(encoding="utf-8") for p in sorted((CORPUS / "domains").glob("*.xml"))]
    return (*corpus, *golden_texts("domains/*.xml"))


@functools.cache
def network_seeds() -> tuple[str, ...]:
    corpus = [p.read_text(encoding="utf-8") for p in sorted((CORPUS / "networks").glob("*.xml"))]
    return (*corpus, *golden_texts("networks/*.xml"))


def one_megabyte_domain() -> str:
    """A real corpus domain whose <devices> holds as many copies of its interfaces as make 1 MB."""
    root = ET.fromstring(max(domain_seeds(), key=lambda t: t.count("<interface")))
    devices = root.find("devices")
    assert devices is not None
    ifaces = devices.findall("interface")
    size = sum(len(ET.tostring(i)) for i in ifaces)
    devices.extend(ifaces * (1_000_000 // size + 1))
    return ET.tostring(root, encoding="unicode")


@functools.cache
def link_dumps() -> tuple[list[bytes], ...]:
    return tuple(netlink.link_dump(d) for d in golden_json("links.json"))


@functools.cache
def qdisc_dumps() -> tuple[list[bytes], ...]:
    return tuple(netlink.qdisc_dump(d, _index_of()) for d in golden_json("facts/tc.json"))


@functools.cache
def neigh_dumps() -> tuple[list[bytes], ...]:
    return tuple(netlink.neigh_dump(d, _index_of()) for d in golden_json("facts/neigh.json"))


def _index_of() -> dict[str, int]:
    return {str(r["ifname"]): int(r["ifindex"]) for r in golden_json("links.json")[0]}


def _name_of(index: int) -> str:
    return f"if{index}"


STATUS_CASES = Path(__file__).resolve().parents[1] / "golden" / "cases"


@functools.cache
def proc_net_unix_seeds() -> tuple[str, ...]:
    return tuple(sorted({p.read_text(encoding="utf-8") for p in STATUS_CASES.glob("*/backends/proc_net_unix.txt")}))


@functools.cache
def vf_table_seeds() -> tuple[Any, ...]:
    """Link dumps with a PF's vfinfo_list (the SR-IOV golden cases of both suites)."""
    status = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(STATUS_CASES.glob("hostdev-*/links.json"))]
    return tuple(_distinct([d for d in (*status, *golden_json("links.json")) if "vfinfo_list" in json.dumps(d)]))


def run_vf_tables(dump: Any) -> object:
    names = [r.get("ifname") for r in dump if isinstance(r, dict)] if isinstance(dump, list) else []
    return vf_tables_from_dump(dump, [n for n in names if isinstance(n, str)])


def run_domain(text: str) -> object:
    parsed = parse_domain(text, DomainState.RUNNING)
    return parsed, parse_domain_extras(text, parsed.name)


def run_network(text: str) -> object:
    return parse_network_xml(text, active=True, autostart=None), parse_network_port_isolated(text)


def run_nft(doc: Any) -> object:
    return parse_nft_ruleset(doc)


QOS_CASES = Path(__file__).resolve().parents[1] / "golden_qos" / "cases"


def tc_shaping_dumps() -> tuple[list[bytes], ...]:
    """Each golden QoS case's tc objects as the kernel dumps them: qdisc, class and filter
    messages (each reader picks its own message type)."""
    out = []
    for case in sorted(QOS_CASES.glob("*/case.json")):
        host = Host()
        for line in json.loads(case.read_text())["tc"]:
            host.run(line)
        msgs = [
            *host.qdiscs,
            *(m for ms in host.classes.values() for m in ms),
            *(m for ms in host.filters.values() for m in ms),
        ]
        out.append([b"".join(msgs)])
    return tuple(out)


def ovs_qos_seeds() -> tuple[str, ...]:
    docs = (json.loads(c.read_text()) for c in sorted(QOS_CASES.glob("*/case.json")))
    return tuple("\n".join(d["ovs_qos"]) + "\n" for d in docs if "ovs_qos" in d)


def run_tc_shaping(dump: list[bytes]) -> object:
    police = parse_police_filters(dump, _name_of)
    return parse_qdiscs_rtnl(dump, _name_of), parse_classes(dump, _name_of), police, parse_redirects(dump, _name_of)


TARGETS: tuple[Target, ...] = (
    Target("domain-xml", domain_seeds, mutate_xml, run_domain, (DomainXmlError, FactXmlError)),
    Target("network-xml", network_seeds, mutate_xml, run_network, (NetworkXmlError, FactXmlError)),
    Target("nwfilter-xml", lambda: golden_texts("facts/nwfilters/*.xml"), mutate_xml, parse_nwfilter_xml,
           (FactXmlError,)),
    Target("nwfilter-binding-xml", lambda: golden_texts("facts/nwfilter-bindings/*.xml"), mutate_xml,
           parse_binding_xml, (FactXmlError,)),
    Target("links-json", lambda: golden_json("links.json"), mutate_json, parse_links, (JsonShapeError,)),
    Target("links-rtnetlink", link_dumps, mutate_bytes,
           parse_dump, ()),
    Target("ovsdb-json", lambda: golden_texts("ovs.json"), mutate_json_lines, parse_ovs_output, (OvsError,)),
    Target("tc-json", lambda: golden_json("facts/tc.json"), mutate_json, parse_qdiscs, (JsonShapeError,)),
    Target("tc-rtnetlink", qdisc_dumps,
           mutate_bytes, lambda g: parse_qdisc_dump(g, _name_of), ()),
    Target("neigh-json", lambda: golden_json("facts/neigh.json"), mutate_json, parse_neighbors, (JsonShapeError,)),
    Target("neigh-rtnetlink", neigh_dumps,
           mutate_bytes, lambda g: parse_neigh_dump(g, _name_of), ()),
    Target("addr-json", lambda: golden_json("facts/addr.json"), mutate_json, parse_addresses, (JsonShapeError,)),
    Target("nft-json", lambda: golden_json("facts/nft.json"), mutate_json, run_nft, (JsonShapeError,)),
    Target("iptables-save", lambda: golden_texts("facts/iptables-legacy.txt"), mutate_lines, parse_iptables_save,
           ()),
    Target("proc-net-unix", proc_net_unix_seeds, mutate_lines, parse_proc_net_unix, ()),
    Target("vfinfo-json", vf_table_seeds, mutate_json, run_vf_tables, (JsonShapeError,)),
    Target("tc-shaping-rtnetlink", tc_shaping_dumps, mutate_bytes, run_tc_shaping, ()),
    Target("ovsdb-qos-json", ovs_qos_seeds, mutate_json_lines, parse_ovs_qos_output, (OvsError,)),
)  # fmt: skip
