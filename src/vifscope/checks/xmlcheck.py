"""``vifscope check-xml``: a domain XML that is not defined yet, checked against this host.

Pure functions over (the file's declared vifs, the HostSnapshot, the MAC store's view, what
the kernel can shape). Not part of doctor's registry: doctor looks at what runs, these look
at what is about to be defined. Every check has a stable ``xml.`` id (``CHECK_IDS``), a
severity, evidence and the exact fix, built as argv like doctor's.

The plug checks (bridge, network, direct) are in ``xmlplug``; the rest is here.
"""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.checks.runner import order
from vifscope.checks.xmlbase import (
    EMULATED_MODELS,
    IFNAMSIZ,
    MODEL_TYPES,
    RESERVED_PREFIXES,
    SHAPED_TYPES,
    FileContext,
    HostView,
    VifCheck,
    XmlDomain,
    XmlInterface,
)
from vifscope.checks.xmlplug import check_plug
from vifscope.model import Command, Evidence, Finding, Fix, Severity, Shaping
from vifscope.model.mac import MacError, MacState, format_mac, parse_mac


def allocate_fix(c: VifCheck, why: str) -> Fix:
    """A MAC from a pool, recorded for this domain: ``--domain=NAME`` is one word, so a domain
    named "-x" is never read as an option."""
    cmd = Command(("vifscope", "mac", "allocate", "--pool", "POOL", f"--domain={c.dom.name}"))
    return Fix(
        (cmd,),
        f"{why}; POOL: one of 'vifscope mac pool list'; put the MAC in <mac address=> of interface {c.vif.index}",
    )


def mac_problem(mac: str) -> str | None:
    """Why libvirt or a bridge would not take this MAC, or None."""
    if "-" in mac:
        return "libvirt wants ':' between the octets"
    try:
        value = parse_mac(mac)
    except MacError:
        return "not six hexadecimal octets"
    if value == 0:
        return "all zero"
    if value >> 40 & 1:
        return "multicast bit set (first octet odd)"
    return None


def check_mac(c: VifCheck) -> Iterator[Finding]:
    mac = c.vif.mac
    if mac is None:
        msg = "no <mac>: libvirt picks a random 52:54:00 MAC at define time, known to no pool (a clash goes unseen)"
        yield c.finding("xml.mac_random", Severity.INFO, msg, [], allocate_fix(c, "a MAC the pool records"))
        return
    why = mac_problem(mac)
    if why is not None:
        msg = f"MAC {mac} is invalid: {why}"
        yield c.finding("xml.mac_invalid", Severity.ERROR, msg, [("mac", mac), ("reason", why)], allocate_fix(c, why))
        return
    mac = format_mac(parse_mac(mac))
    yield from _mac_in_use(c, mac)
    yield from _mac_store(c, mac)


def _mac_in_use(c: VifCheck, mac: str) -> Iterator[Finding]:
    others = c.ctx.macs_elsewhere.get(mac, [])
    twins = [i for i in c.ctx.macs_in_file.get(mac, []) if i != c.vif.index]
    if others or twins:
        where = others + [f"interface {i} of this file" for i in twins]
        ev: list[tuple[str, Evidence]] = [("mac", mac), ("used_by", ", ".join(where))]
        msg = f"MAC {mac} is already used by {', '.join(where)}"
        yield c.finding("xml.mac_in_use", Severity.ERROR, msg, ev, allocate_fix(c, "a MAC nobody uses"))
    links = c.ctx.link_macs.get(mac, [])
    if links:
        ev = [("mac", mac), ("host_links", ", ".join(links))]
        msg = f"MAC {mac} is the MAC of host link {', '.join(links)}: the bridge would deliver its frames there"
        yield c.finding("xml.mac_host_conflict", Severity.ERROR, msg, ev, allocate_fix(c, "a MAC no link has"))


def _mac_store(c: VifCheck, mac: str) -> Iterator[Finding]:
    store = c.host.store
    rec = next((r for r in store.records if r.text == mac), None) if store else None
    if rec is None or rec.domain == c.dom.name:
        return
    if rec.state is MacState.QUARANTINED:
        sev, why = Severity.WARNING, "released and quarantined: the pool may hand it out again"
    else:
        sev, why = Severity.ERROR, f"{rec.state} for {rec.domain or 'no named domain'}"
    ev: list[tuple[str, Evidence]] = [("mac", mac), ("state", rec.state), ("store_domain", rec.domain)]
    ev.append(("store_host", rec.host))
    yield c.finding(
        "xml.mac_store_taken", sev, f"the MAC store has {mac}: {why}", ev, allocate_fix(c, "a MAC of your own")
    )


def check_model(c: VifCheck) -> Iterator[Finding]:
    model = c.vif.model
    if c.vif.type not in MODEL_TYPES or (model is not None and model not in EMULATED_MODELS):
        return
    if model is None:
        msg = "no <model>: QEMU emulates its default NIC (rtl8139 on pc, e1000e on q35), not virtio"
        sev, change = Severity.INFO, "add <model type='virtio'/>"
    else:
        msg = f"model {model} is an emulated NIC: slower and more CPU per packet than virtio"
        sev, change = Severity.WARNING, f"change <model type='{model}'/> to <model type='virtio'/>"
    note = f"{change} in interface {c.vif.index} (the guest needs the virtio-net driver)"
    yield c.finding("xml.model_not_virtio", sev, msg, [("model", model)], Fix(note=note))


def _target_name_problem(name: str) -> str | None:
    if len(name.encode()) > IFNAMSIZ:
        return f"longer than {IFNAMSIZ} bytes"
    if name in (".", "..") or any(ch in name for ch in "/:") or any(ch.isspace() for ch in name):
        return "holds '/', ':' or white space"
    return None


def check_target(c: VifCheck) -> Iterator[Finding]:
    dev = c.vif.target
    if dev is None:
        return
    why = _target_name_problem(dev)
    if why is not None:
        fix = Fix(note=f"rename or delete <target dev=> of interface {c.vif.index}")
        yield c.finding("xml.target_invalid", Severity.ERROR, f"target {dev!r} {why}", [("target", dev)], fix)
        return
    keeps = c.vif.type == "ethernet" and not c.iface.target_managed
    prefix = next((p for p in RESERVED_PREFIXES if dev.startswith(p)), None)
    if prefix is not None and not keeps:
        msg = f"target {dev}: libvirt drops names starting with {prefix!r} and generates its own (vnetN, macvtapN)"
        fix = Fix(note=f"rename <target dev=> of interface {c.vif.index} (not vnet*, macvtap*, macvlan*) or delete it")
        yield c.finding("xml.target_reserved", Severity.WARNING, msg, [("target", dev), ("prefix", prefix)], fix)
        return
    link = c.host.snap.links_by_name.get(dev)
    if link is not None and dev not in c.ctx.own_targets:
        ev: list[tuple[str, Evidence]] = [("target", dev), ("link_kind", link.kind), ("link_master", link.master)]
        fix = Fix(note=f"rename or delete <target dev=> of interface {c.vif.index} (libvirt then generates one)")
        yield c.finding("xml.target_in_use", Severity.ERROR, f"a host link is already named {dev}", ev, fix)


def check_bandwidth(c: VifCheck) -> Iterator[Finding]:
    i = c.iface
    if not (i.inbound or i.outbound):
        return
    if c.vif.type not in SHAPED_TYPES:
        msg = f"<bandwidth> on type {c.vif.type}: libvirt shapes only bridge, network, direct and ethernet"
        fix = Fix(note=f"delete <bandwidth> of interface {c.vif.index}, or shape elsewhere")
        yield c.finding("xml.bandwidth_ignored", Severity.WARNING, msg, [], fix)
        return
    shaping = c.host.shaping
    if shaping is None:
        return
    missing = [what for what, need, has in _shaping_needs(i, shaping) if need and not has]
    if missing:
        ev: list[tuple[str, Evidence]] = [("inbound", i.inbound), ("outbound", i.outbound), ("sfq", shaping.sfq)]
        ev.append(("police", shaping.police))
        msg = f"this kernel lacks {' and '.join(missing)}: libvirt refuses to start the domain with this <bandwidth>"
        note = f"delete <bandwidth> of interface {c.vif.index}, or run this domain on a kernel with sfq and police"
        yield c.finding("xml.bandwidth_unsupported", Severity.ERROR, msg, ev, Fix(note=note), subject="host")


def _shaping_needs(i: XmlInterface, s: Shaping) -> tuple[tuple[str, bool, bool], ...]:
    return (("sfq (inbound)", i.inbound, s.sfq), ("police (outbound)", i.outbound, s.police))


def check_domain(dom: XmlDomain, host: HostView) -> tuple[Finding, ...]:
    """Every finding for one file, errors first."""
    ctx = FileContext(dom, host.snap)
    by_index = {i.index: i for i in dom.interfaces}
    found: list[Finding] = []
    for v in dom.vifs:
        c = VifCheck(dom, v, by_index.get(v.index, XmlInterface(v.index)), host, ctx)
        for fn in (check_plug, check_mac, check_model, check_target, check_bandwidth):
            found.extend(fn(c))
    return order(found)
