"""Whether flows can run on this host: the program is loaded (proving libbpf, the verifier,
privileges and lockdown) and closed again without attaching anything; TCX support is read
from the kernel's config (or its version when the config is not published)."""

from __future__ import annotations

import gzip
import os
import re
import socket
from dataclasses import replace
from pathlib import Path

from vifscope.model.flows import MAP_FULL, FlowSupport
from vifscope.sources.flows.libbpf import BpfUnavailable

KERNEL_CONFIG = Path("/proc/config.gz")
CONNTRACK_ACCT = Path("/proc/sys/net/netfilter/nf_conntrack_acct")
TCX_SINCE = (6, 6)


def kernel_has_tcx(config: Path = KERNEL_CONFIG, release: str | None = None) -> bool | None:
    try:
        text = gzip.decompress(config.read_bytes()).decode("utf-8", "replace")
    except OSError:
        m = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
        return (int(m[1]), int(m[2])) >= TCX_SINCE if m else None
    return re.search(r"^CONFIG_NET_XGRESS=y$", text, re.M) is not None


def _conntrack_acct(path: Path = CONNTRACK_ACCT) -> bool | None:
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return None


def _packet_socket() -> bool:
    """Whether the fallback collector could open its AF_PACKET sockets here (CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except OSError:
        return False
    return True


def read_flow_support(map_full: float = MAP_FULL) -> FlowSupport:
    """The probe (flows.unavailable), the fallback's availability, and live collectors' maps
    at ``map_full`` of their size or more (flows.map_full; read after the probe's own map is
    closed; counted only up to that fill)."""
    from vifscope.sources.flows.maps import read_flow_maps

    got = _probe()
    return replace(got, packet=_packet_socket(), maps=read_flow_maps(map_full))


def _probe() -> FlowSupport:
    from vifscope.sources.flows.collector import FlowCollector

    tcx, acct = kernel_has_tcx(), _conntrack_acct()
    try:
        with FlowCollector(max_flows=16) as col:
            program = col.program
    except BpfUnavailable as exc:
        return FlowSupport(False, exc.reason, exc.hint, None, tcx, acct)
    if tcx is False:
        why = f"the kernel ({os.uname().release}) has no TCX (CONFIG_NET_XGRESS): flows attaches with TCX only"
        return FlowSupport(False, why, "Linux 6.6 or later with CONFIG_NET_XGRESS=y", program, tcx, acct)
    return FlowSupport(True, "", "", program, tcx, acct)
