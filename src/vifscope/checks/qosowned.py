"""QoS objects vifscope owns on the host: DSCP marks (one nft table, ``netdev vifscope_qos``)
and the ifb devices of the tc backend. Read-only: compare the domains' vifscope metadata with
the kernel and suggest the exact command.

* qos.mark_missing / qos.mark_drift: a running vif's declared mark (``vifscope qos set
  --dscp``) has no chain hooked to its tap, or one setting another value.
* qos.mark_bypassed: a declared mark on a tap whose ingress tc redirects to an ifb (the tc
  backend's outbound cap): the packets never reach nft's netdev ingress hook (measured).
* qos.mark_stale: a chain in vifscope's table hooked to a device that is no running vif's tap
  with a declared mark. On recent kernels (measured on 6.18) a netdev chain outlives its device
  and hooks the next device of that name -- a later guest given the same ``vnetN`` is marked.
* qos.orphan_ifb: a ``vsq-N`` ifb device (the name only the tc backend gives) that no running
  vif's policy names and no tap redirects to: left by a domain stopped while nobody healed,
  or by a crash.
"""

from __future__ import annotations

from collections.abc import Iterator

from vifscope.bind.qosdscp import mark_verdict
from vifscope.checks.base import Check, CheckContext, Explain, needs
from vifscope.model import Command, Finding, Fix, Severity, VifBinding
from vifscope.model.qosdscp import DSCP_FAMILY, DSCP_TABLE, DscpMark, dscp_name
from vifscope.model.qospolicy import IFB_PREFIX


def _mark_fix(ctx: CheckContext, b: VifBinding, value: int) -> Fix:
    """``qos set --dscp`` re-creates the chain, reads nft back and verifies (audit-logged);
    ``--live``: the live metadata already declares it."""
    v = b.vif
    argv = ("vifscope", "-c", ctx.snap.uri, "qos", "set", v.domain, "--mac", v.mac or "", "--dscp", dscp_name(value))
    return Fix((Command((*argv, "--live")),))


def _marked(ctx: CheckContext, verdict: str) -> Iterator[tuple[VifBinding, int, DscpMark | None]]:
    marks = ctx.facts.marks_by_dev
    for b in ctx.running:
        v = b.vif
        if v.dscp_mark is None or b.link is None:
            continue  # no tap: the binding checks say so
        mark = marks.get(v.target or "")
        if mark_verdict(v.dscp_mark, mark) == verdict:
            yield b, v.dscp_mark, mark


def mark_missing(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b, value, _mark in _marked(ctx, "missing"):
        msg = f"DSCP {dscp_name(value)} declared for {b.vif.target}, but no chain in nft's {DSCP_TABLE} marks it"
        ev = [("declared", value), ("in_force", None), ("table", f"{DSCP_FAMILY} {DSCP_TABLE}")]
        yield c.on_vif(b, msg, ev, _mark_fix(ctx, b, value))


def mark_drift(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    for b, value, mark in _marked(ctx, "drift"):
        got = f"ip {mark.ipv4}, ip6 {mark.ipv6}" if mark else "-"
        msg = f"{b.vif.target} is marked {got}, not the declared DSCP {dscp_name(value)} ({value})"
        ev = [("declared", value), ("ipv4", mark.ipv4 if mark else None), ("ipv6", mark.ipv6 if mark else None),
              ("chain", mark.chain if mark else None)]  # fmt: skip
        yield c.on_vif(b, msg, ev, _mark_fix(ctx, b, value))


def mark_bypassed(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    """A declared mark on a tap whose ingress a tc filter redirects (the tc backend's ifb): tc's
    ingress runs before nft's netdev ingress, and ifb hands the packets back past both
    (__netif_receive_skb_core's skip_classify), so the chain never sees them."""
    tc = ctx.facts.tc_shaping
    redirects = tc.redirect_by_dev if tc else {}
    for b in ctx.running:
        v = b.vif
        if v.dscp_mark is None or b.link is None or (v.target or "") not in redirects:
            continue
        ifb = redirects[v.target or ""]
        msg = (
            f"DSCP {dscp_name(v.dscp_mark)} is declared for {v.target}, but its ingress is redirected to {ifb}: "
            "the packets bypass nft's netdev ingress hook, so none is marked"
        )
        argv = ("vifscope", "-c", ctx.snap.uri, "qos", "set", v.domain, "--mac", v.mac or "", "--backend", "tc")
        note = "keep one: this drops the tc-backend outbound cap; or drop the mark with --dscp none"
        ev = [("declared", v.dscp_mark), ("redirect_to", ifb), ("chain_present", v.target in ctx.facts.marks_by_dev)]
        yield c.on_vif(b, msg, ev, Fix((Command((*argv, "--outbound", "0", "--live")),), note))


def _declaring_taps(ctx: CheckContext) -> frozenset[str]:
    return frozenset(b.vif.target for b in ctx.running if b.vif.dscp_mark is not None and b.vif.target)


def mark_stale(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    if "libvirt" in ctx.snap.failed_sources:
        return  # the declared side is unknown: every chain would look stale
    marks = ctx.facts.dscp_marks or ()
    keep = _declaring_taps(ctx)
    stale = [m for m in marks if m.dev not in keep]
    for m in stale:
        here = m.dev in ctx.snap.links_by_name
        where = "an existing device no running vif declares a mark for" if here else "a device that does not exist"
        delete = Command(("nft", "delete", "chain", DSCP_FAMILY, DSCP_TABLE, m.chain))
        ev = [("chain", m.chain), ("device", m.dev), ("device_exists", here), ("ipv4", m.ipv4), ("ipv6", m.ipv6)]
        note = "vifscope's own table; the table itself can go once it has no chain left"
        yield c.on_host(m.dev, f"chain {m.chain} of {DSCP_TABLE} marks {m.dev}, {where}", ev, Fix((delete,), note))


def _ifbs_in_use(ctx: CheckContext) -> frozenset[str]:
    """ifb devices a running vif's policy names or a tap's ingress redirects to."""
    named = {
        v.qos_policy.created.ifb
        for v in ctx.snap.vifs
        if v.domain_state.has_taps and v.qos_policy and v.qos_policy.created and v.qos_policy.created.ifb
    }
    tc = ctx.facts.tc_shaping
    return frozenset(named | set(tc.redirect_by_dev.values() if tc else ()))


def orphan_ifb(ctx: CheckContext, c: Check) -> Iterator[Finding]:
    if "libvirt" in ctx.snap.failed_sources:
        return
    used = _ifbs_in_use(ctx)
    by_index = {link.ifindex: link.name for link in ctx.snap.links}
    for link in ctx.snap.links:
        suffix = link.name.removeprefix(IFB_PREFIX)
        if link.kind != "ifb" or not link.name.startswith(IFB_PREFIX) or not suffix.isdecimal() or link.name in used:
            continue  # only the tc backend's own names: vsq-<the tap's ifindex>
        tap = by_index.get(int(suffix))
        ev = [("ifb", link.name), ("tap_ifindex", suffix), ("tap_now", tap)]
        msg = f"{link.name} is a vifscope ifb device no running vif uses (its tap, ifindex {suffix}, is gone)"
        if tap is not None:
            msg = (
                f"{link.name} is a vifscope ifb device no running vif uses (ifindex {suffix} is {tap}, not redirected)"
            )
        yield c.on_host(link.name, msg, ev, Fix((Command(("ip", "link", "del", "dev", link.name)),)))


_MARKS = needs("dscp_marks", f"nft's {DSCP_TABLE} table")
CHECKS: tuple[Check, ...] = (
    Check(
        "qos.mark_missing",
        "performance",
        Severity.WARNING,
        "declared DSCP mark not in force",
        mark_missing,
        Explain(
            "A running vif's vifscope metadata declares a DSCP mark (vifscope qos set --dscp) but no chain of nft's "
            "netdev vifscope_qos table is hooked to its tap.",
            "The guest's traffic leaves unmarked: the network's priority queues treat it as best effort.",
            "vifscope qos set DOMAIN --mac MAC --dscp NAME --live (re-creates the chain and verifies it); "
            "watch --heal does it when a tap is re-created.",
            "A tap being re-created at this moment (domain restart, hot-plug) before watch --heal re-marks it.",
        ),
        (_MARKS,),
    ),
    Check(
        "qos.mark_drift",
        "performance",
        Severity.WARNING,
        "DSCP mark in force differs from the declared one",
        mark_drift,
        Explain(
            "The tap's chain in vifscope_qos sets another DSCP value (or different ones for IPv4 and IPv6) than the "
            "domain's metadata declares.",
            "Someone edited the rule by hand: the priority the operator reads is not the one the packets carry.",
            "vifscope qos set DOMAIN --mac MAC --dscp NAME --live (flushes the chain and writes both rules again).",
        ),
        (_MARKS,),
    ),
    Check(
        "qos.mark_bypassed",
        "performance",
        Severity.WARNING,
        "DSCP mark bypassed by a tc redirect",
        mark_bypassed,
        Explain(
            "A running vif declares a DSCP mark, and a tc filter on its tap's ingress redirects the guest's packets "
            "(qos set --backend tc --outbound sends them through an ifb device).",
            "tc's ingress runs before nft's netdev ingress hook, and ifb re-injects the packets past both: the mark's "
            "chain never sees them, so the guest's traffic leaves unmarked although chain and metadata look right.",
            "Keep one of the two on this vif: vifscope qos set DOMAIN --mac MAC --backend tc --outbound 0, or "
            "vifscope qos set DOMAIN --mac MAC --dscp none.",
        ),
        (_MARKS, needs("tc_shaping", "tc classes and filters")),
    ),
    Check(
        "qos.mark_stale",
        "performance",
        Severity.WARNING,
        "DSCP chain for no declared vif",
        mark_stale,
        Explain(
            "A chain of vifscope's nft table is hooked to a device that is not the tap of a running vif declaring a "
            "mark: its domain stopped, the vif was detached or the mark cleared behind vifscope's back.",
            "On recent kernels (measured on 6.18) a netdev chain survives its device and hooks the next device of the "
            "same name: the next guest handed that vnetN is marked with a priority nobody gave it.",
            "nft delete chain netdev vifscope_qos CHAIN (watch --heal does it when a marked tap goes away).",
            "A domain starting at this moment, before its metadata is read.",
        ),
        (_MARKS,),
    ),
    Check(
        "qos.orphan_ifb",
        "host",
        Severity.WARNING,
        "vifscope ifb device left behind",
        orphan_ifb,
        Explain(
            "An ifb device named vsq-N (what qos set --backend tc creates to shape a guest's outbound) that no "
            "running vif's policy names and no tap's ingress redirects to.",
            "It is vifscope's leftover from a domain that stopped, a vif detached or a crash: harmless traffic-wise "
            "but it accumulates, one per shaped tap, and hides the real ones in 'ip link'.",
            "ip link del dev vsq-N (watch --heal and qos set --clear remove it themselves).",
            "A qos set --backend tc running at this moment: it creates the ifb before it writes the metadata.",
        ),
        (needs("tc_shaping", "tc classes and filters"),),
    ),
)
