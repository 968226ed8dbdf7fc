"""``qos set --backend tc`` as data: the tc / ip commands that build (or tear down) a vif's
vifscope-owned shaping, and the refusals. Pure: every input is read beforehand.

Guest inbound (the tap's egress): a root ``htb`` with handle 1: and class 1:1 -- libvirt's
layout without its sfq leaf, which this kernel family may lack. Guest outbound (the tap's
ingress) is shaped, not policed (policing TCP below a small burst collapses it; the kernel may
lack act_police): an ``ingress`` qdisc with a u32 match-all filter redirecting (``mirred``) to
an ``ifb`` device named after the tap's ifindex, whose egress carries the same htb.

A plan always goes from what vifscope made (the metadata's ``Created``) to the target: tear
down ours, then build anew. A kernel object vifscope did not make is never removed: a foreign
root or ingress qdisc makes the plan a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from vifscope.model import Command
from vifscope.model.qos import BandwidthRate
from vifscope.model.qospolicy import INGRESS_HANDLE, ROOT_HANDLE, Created, VifPolicy, VifSite, ifb_name

# Root qdiscs a link has when nobody configured it: replacing one takes nothing from anyone.
DEFAULT_ROOTS = frozenset({"noqueue", "pfifo_fast", "mq", "pfifo", "bfifo", "fq_codel", "fq"})
TAP_TYPES = frozenset({"bridge", "network", "ethernet"})
TC_HINT = "use --backend tc (vifscope shapes with htb and an ifb device instead)"


@dataclass(frozen=True)
class Refusal:
    message: str
    hint: str


@dataclass(frozen=True)
class TcPlan:
    """The commands, in order, and what vifscope owns once they ran (None: nothing)."""

    commands: tuple[Command, ...]
    created: Created | None


def _htb(dev: str, rate: BandwidthRate) -> tuple[Command, ...]:
    """``replace``: a tap comes with a default root (pfifo_fast, mq, ...) that ``add`` will not
    override; anything else was refused before this runs."""
    avg = rate.average or 0
    burst = ("burst", f"{rate.burst}kb") if rate.burst else ()
    return (
        Command(("tc", "qdisc", "replace", "dev", dev, "root", "handle", ROOT_HANDLE, "htb", "default", "1")),
        Command((
            "tc", "class", "add", "dev", dev, "parent", ROOT_HANDLE, "classid", f"{ROOT_HANDLE}1", "htb",
            "rate", f"{avg}kbps", "ceil", f"{rate.peak or avg}kbps", *burst,
        )),
    )  # fmt: skip


def _redirect(dev: str, ifb: str, rate: BandwidthRate) -> tuple[Command, ...]:
    return (
        Command(("ip", "link", "add", "name", ifb, "type", "ifb")),
        Command(("ip", "link", "set", "dev", ifb, "up")),
        *_htb(ifb, rate),
        Command(("tc", "qdisc", "add", "dev", dev, "handle", INGRESS_HANDLE, "ingress")),
        Command((
            "tc", "filter", "add", "dev", dev, "parent", INGRESS_HANDLE, "protocol", "all", "prio", "1",
            "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb,
        )),
    )  # fmt: skip


def teardown(site: VifSite, made: Created | None) -> tuple[Command, ...]:
    """Remove what ``made`` says vifscope created, where it is still there (a re-created tap
    has lost it: only a lingering ifb device is left to remove)."""
    if made is None:
        return ()
    same = made.dev == site.dev
    out: list[Command] = []
    if made.root and same and site.root_kind == "htb":
        out.append(Command(("tc", "qdisc", "del", "dev", site.dev, "root")))
    if made.ingress and same and site.has_ingress:
        out.append(Command(("tc", "qdisc", "del", "dev", site.dev, "ingress")))
    if made.ifb and made.ifb in site.links:
        out.append(Command(("ip", "link", "del", "dev", made.ifb)))
    return tuple(out)


def _unshapable(site: VifSite) -> Refusal | None:
    """Vifs whose tap the layout does not fit: none here, a macvtap (its egress is the guest's
    outbound, not inbound), an OVS port (OVS owns its qdiscs and deletes an ingress one)."""
    if site.ifindex == 0 or not site.dev:
        return Refusal(
            f"{site.domain} {site.mac}: no tap {site.dev or '(none)'} on this host", "is the domain running?"
        )
    if site.vif_type not in TAP_TYPES:
        return Refusal(
            f"{site.domain} {site.mac}: the tc backend shapes taps (bridge, network, ethernet), not {site.vif_type}",
            "use --backend libvirt",
        )
    if site.ovs:
        return Refusal(
            f"{site.domain} {site.mac}: an Open vSwitch port: OVS manages its qdiscs",
            "use --backend libvirt (OVSDB QoS)",
        )
    return None


def _refusal(site: VifSite, ours: Created | None, target: VifPolicy) -> Refusal | None:
    mine = ours if ours is not None and ours.dev == site.dev else Created(site.dev)
    unfit = _unshapable(site)
    if unfit is not None:
        return unfit
    if site.libvirt_bandwidth:
        return Refusal(
            f"{site.domain} {site.mac}: libvirt's <bandwidth> owns this vif's shaping; the tc backend leaves it alone",
            "use --backend libvirt, or remove the <bandwidth> first",
        )
    root = site.root_kind
    if target.inbound is not None and root is not None and root not in DEFAULT_ROOTS and not mine.root:
        return Refusal(
            f"{site.dev} has a root {root} qdisc vifscope did not create",
            f"remove it first if it is not needed: tc qdisc del dev {site.dev} root",
        )
    if target.outbound is not None and site.has_ingress and not mine.ingress:
        return Refusal(
            f"{site.dev} has an ingress qdisc vifscope did not create",
            f"remove it first if it is not needed: tc qdisc del dev {site.dev} ingress",
        )
    return None


def plan_tc(site: VifSite, current: VifPolicy | None, target: VifPolicy | None) -> TcPlan | Refusal:
    """From what vifscope made for this vif (``current``'s Created) to ``target`` (None: clear)."""
    ours = current.created if current is not None else None
    if target is not None:
        refused = _refusal(site, ours, target)
        if refused is not None:
            return refused
    steps = list(teardown(site, ours))
    if target is None or (target.inbound is None and target.outbound is None):
        return TcPlan(tuple(steps), None)
    ifb = ifb_name(site.ifindex) if target.outbound is not None else None
    if target.inbound is not None:
        steps.extend(_htb(site.dev, target.inbound))
    if target.outbound is not None and ifb is not None:
        steps.extend(_redirect(site.dev, ifb, target.outbound))
    return TcPlan(tuple(steps), Created(site.dev, target.inbound is not None, ifb is not None, ifb))


def merge(current: VifPolicy | None, mac: str, inbound: BandwidthRate | None, outbound: BandwidthRate | None,
          *, set_in: bool, set_out: bool, clear: bool) -> VifPolicy | None:  # fmt: skip
    """The policy after ``qos set``: given directions replace the current ones (an average of 0
    removes one, as in ``virsh domiftune``), the others stay; ``clear`` removes both."""
    if clear:
        return None
    keep_in = current.inbound if current is not None else None
    keep_out = current.outbound if current is not None else None
    new_in = (inbound if inbound is not None and inbound.shapes else None) if set_in else keep_in
    new_out = (outbound if outbound is not None and outbound.shapes else None) if set_out else keep_out
    if new_in is None and new_out is None:
        return None
    return VifPolicy(mac, new_in, new_out, "tc")
