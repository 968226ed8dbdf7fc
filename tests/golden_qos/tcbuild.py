"""tc commands -> the rtnetlink dump messages the kernel would answer with afterwards.

Golden input for what cannot be created on this kernel (no sfq, fw or police here) and for
layouts too tedious to set up for real. Each message is packed from the kernel's own structs
(linux/pkt_sched.h ``tc_htb_glob`` / ``tc_htb_opt`` / ``tc_ratespec``, linux/pkt_cls.h u32
attributes, linux/tc_act/tc_police.h ``tc_police``), and values are converted as iproute2's
tc does (tc_util.c units: ``kbps`` = 1,000 bytes/s, ``kb`` = 1,024 bytes; bursts stored as
64 ns scheduler ticks, ``tc_calc_xmittime``). How a kernel dumps what tc created:

* a top-level htb class reports parent TC_H_ROOT; htb without ``ceil`` sets ceil = rate and
  without ``burst`` a buffer of rate / HZ + 1,600 bytes (HZ = 10^9 with high-res timers);
* u32's ``police`` keyword is the legacy TCA_U32_POLICE nest (tcf_exts_dump of an old-style
  police); ``action police`` is a TCA_U32_ACT list of TCA_ACT_KIND / TCA_ACT_OPTIONS nests;
  u32 also dumps its hash table (``fh 800:``) as a message of its own, without police;
* ``action mirred egress redirect dev X`` is a TCA_U32_ACT list with a ``mirred`` action
  (linux/tc_act/tc_mirred.h ``tc_mirred``: eaction TCA_EGRESS_REDIR, ifindex of X).

Only the words libvirt's and the tests' commands use are understood.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from vifscope.model.qos import TcShaping
from vifscope.sources.kernel.tcshaping import assemble, parse_qdiscs

NLMSG = struct.Struct("=IHHII")
TCMSG = struct.Struct("=BxxxiIII")
RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER = 36, 40, 44
TC_H_ROOT, TC_H_INGRESS = 0xFFFFFFFF, 0xFFFFFFF1
TICKS_PER_SECOND = 15_625_000
RATES = {
    "bit": 1 / 8,
    "kbit": 125,
    "mbit": 125_000,
    "gbit": 125_000_000,
    "bps": 1,
    "kbps": 1000,
    "mbps": 10**6,
    "gbps": 10**9,
}
SIZES = {"b": 1, "k": 1024, "kb": 1024, "m": 1 << 20, "mb": 1 << 20, "kbit": 128, "mbit": 131072}
ACT = {"continue": -1, "pass": 0, "ok": 0, "reclassify": 1, "drop": 2, "shot": 2, "pipe": 3}


def attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * ((4 - size % 4) % 4)


def nest(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | 0x8000, b"".join(attrs))  # NLA_F_NESTED, as the kernel sets it


def _unit(text: str, table: dict[str, float]) -> int:
    for suffix in sorted(table, key=len, reverse=True):
        if text.lower().endswith(suffix):
            return int(float(text[: -len(suffix)]) * table[suffix])
    return int(text)


def rate(text: str) -> int:
    return _unit(text, RATES)


def size(text: str) -> int:
    return _unit(text, SIZES)


def ticks(nbytes: int, bps: int) -> int:
    return int(nbytes / bps * TICKS_PER_SECOND)


def handle(text: str) -> int:
    major, _, minor = text.partition(":")
    return (int(major or "0", 16) << 16) | int(minor or "0", 16)


def ratespec(bps: int) -> bytes:
    return struct.pack("=BBHhHI", 0, 1, 0, -1, 0, min(bps, 0xFFFFFFFF))  # linklayer ethernet


def police_attrs(opts: dict[str, str]) -> bytes:
    bps = rate(opts["rate"])
    burst = ticks(size(opts["burst"]), bps)
    tbf = struct.pack("=IiIII", 1, ACT[opts.get("action", "drop")], 0, burst, size(opts.get("mtu", "2kb")))
    tbf += ratespec(bps) + ratespec(0) + struct.pack("=iiI", 1, 1, 0)
    out = attr(1, tbf)  # TCA_POLICE_TBF
    if bps > 0xFFFFFFFF:
        out += attr(8, struct.pack("=Q", bps))  # TCA_POLICE_RATE64
    return out


def _words(argv: list[str], start: int) -> dict[str, str]:
    """keyword value pairs after ``start`` (flags without a value map to "")."""
    out: dict[str, str] = {}
    i = start
    flags = {"drop", "pass", "continue", "reclassify", "pipe", "root", "ingress", "htb", "sfq", "tbf", "u32", "fw"}
    while i < len(argv):
        if argv[i] in flags:
            out.setdefault("action" if argv[i] in ACT else argv[i], argv[i])
            i += 1
        elif argv[i] == "match":
            i += 4  # match u32 0 0
        elif argv[i] == "police":  # u32's own keyword: the legacy police nest
            out["police"] = ""
            i += 1
        elif argv[i] == "action":  # an action list: "action police ..."
            out[f"act-{argv[i + 1]}"] = ""
            i += 2
        else:
            out[argv[i]] = argv[i + 1] if i + 1 < len(argv) else ""
            i += 2
    return out


@dataclass
class Host:
    """Links by name (ifindex in order of first use) and the messages of each dump."""

    ifindex: dict[str, int] = field(default_factory=dict)
    qdiscs: list[bytes] = field(default_factory=list)
    classes: dict[str, list[bytes]] = field(default_factory=dict)
    filters: dict[str, list[bytes]] = field(default_factory=dict)  # ingress filters by device

    def index(self, dev: str) -> int:
        return self.ifindex.setdefault(dev, 100 + len(self.ifindex))

    def message(self, mtype: int, dev: str, hdl: int, parent: int, info: int, *attrs: bytes) -> bytes:
        body = TCMSG.pack(0, self.index(dev), hdl, parent, info) + b"".join(attrs)
        return NLMSG.pack(NLMSG.size + len(body), mtype, 2, 1, 0) + body

    def run(self, line: str) -> None:
        argv = line.split()
        obj, dev = argv[0], argv[argv.index("dev") + 1]
        w = _words(argv, argv.index("dev") + 2)
        getattr(self, f"_{obj}")(dev, w)

    def _qdisc(self, dev: str, w: dict[str, str]) -> None:
        if "ingress" in w:
            self.qdiscs.append(self.message(RTM_NEWQDISC, dev, 0xFFFF0000, TC_H_INGRESS, 1, attr(1, b"ingress\0")))
            return
        kind = next(k for k in ("htb", "sfq", "tbf") if k in w)
        parent = TC_H_ROOT if "root" in w else handle(w["parent"])
        opts = b""
        if kind == "htb":
            opts = nest(2, attr(2, struct.pack("=IIIII", 3, 10, int(w.get("default", "0"), 16), 0, 0)))
        self.qdiscs.append(
            self.message(
                RTM_NEWQDISC, dev, handle(w.get("handle", "8001:")), parent, 1, attr(1, kind.encode() + b"\0"), opts
            )
        )

    def _class(self, dev: str, w: dict[str, str]) -> None:
        bps = rate(w["rate"])
        ceil = rate(w["ceil"]) if "ceil" in w else bps
        buffer = ticks(size(w["burst"]) if "burst" in w else bps // 10**9 + 1600, bps)
        cbuffer = ticks(size(w["cburst"]) if "cburst" in w else ceil // 10**9 + 1600, ceil)
        opt = (
            ratespec(bps) + ratespec(ceil) + struct.pack("=IIIII", buffer, cbuffer, int(w.get("quantum", "1500")), 0, 0)
        )
        extra = attr(6, struct.pack("=Q", bps)) if bps > 0xFFFFFFFF else b""
        extra += attr(7, struct.pack("=Q", ceil)) if ceil > 0xFFFFFFFF else b""
        parent = handle(w["parent"])
        parent = TC_H_ROOT if parent & 0xFFFF == 0 else parent  # a top class: htb reports root
        msg = self.message(
            RTM_NEWTCLASS, dev, handle(w["classid"]), parent, 0, attr(1, b"htb\0"), nest(2, attr(1, opt), extra)
        )
        self.classes.setdefault(dev, []).append(msg)

    def _filter(self, dev: str, w: dict[str, str]) -> None:
        kind = "u32" if "u32" in w else "fw"
        prio = int(w.get("prio", "49152"))
        info = (prio << 16) | 0x0300  # ETH_P_ALL in network order
        hdl = handle(w.get("handle", "800::800").replace("::", ":"))
        opts = b""
        if "police" in w:
            opts = nest(6, police_attrs(w))
        if "act-police" in w:
            act = nest(1, attr(1, b"police\0"), nest(2, police_attrs(w)))
            opts = nest(7, act)
        if "act-mirred" in w:  # "action mirred egress redirect dev IFB": struct tc_mirred, TCA_EGRESS_REDIR
            mirred = struct.pack("=IIiiiiI", 1, 0, 4, 1, 1, 1, self.index(w["dev"]))  # action TC_ACT_STOLEN
            opts = nest(7, nest(1, attr(1, b"mirred\0"), nest(2, attr(2, mirred))))
        msgs = self.filters.setdefault(dev, []) if w.get("parent", "").startswith("ffff:") else []
        if kind == "u32":
            msgs.append(
                self.message(
                    RTM_NEWTFILTER,
                    dev,
                    0x80000000,
                    0xFFFFFFF2,
                    info,
                    attr(1, b"u32\0"),
                    nest(2, attr(4, struct.pack("=I", 1))),
                )
            )
        msgs.append(
            self.message(
                RTM_NEWTFILTER,
                dev,
                hdl,
                0xFFFFFFF2,
                info,
                attr(1, kind.encode() + b"\0"),
                nest(2, attr(1, struct.pack("=I", 1)), opts),
            )
        )

    def name_of(self, index: int) -> str:
        return {v: k for k, v in self.ifindex.items()}.get(index, f"if{index}")


def shaping(lines: list[str]) -> TcShaping:
    """Run the tc lines on a fake host, then read its dumps as read_tc_shaping does."""
    host = Host()
    for line in lines:
        if line.strip() and not line.startswith("#"):
            host.run(line)
    qdiscs, roots, _ = parse_qdiscs([b"".join(host.qdiscs)], host.name_of)
    classes = [[b"".join(host.classes.get(r.dev, []))] for r in roots]
    filters = [[b"".join(host.filters.get(q.dev, []))] for q in qdiscs if q.ingress]
    return assemble(qdiscs, roots, classes, filters, host.name_of)
