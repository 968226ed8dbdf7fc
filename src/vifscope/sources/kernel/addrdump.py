"""Host addresses from one RTM_GETADDR dump (what ``ip -j addr show`` lists under addr_info).

Why not ``ip -j addr show``: it prints every link with all its details whether or not it has
an address: 0.2 s of JSON at 5,000 taps for the handful of addresses doctor needs. The
address dump carries only the addresses (linux/if_addr.h: ifaddrmsg + IFA_* attributes).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from vifscope.model import HostAddress
from vifscope.sources.kernel.rtnl import ADDR_LEN, IFADDRMSG, RTM_GETADDR, RTM_NEWADDR, iter_bodies, link_namer, pick
from vifscope.sources.kernel.tcdump import fact_dump

IFA_ADDRESS, IFA_LOCAL = 1, 2
FAMILIES: dict[int, str] = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}
WANTED = frozenset({IFA_ADDRESS, IFA_LOCAL})


def is_link_local(raw: bytes) -> bool:
    """fe80::/10 or 169.254.0.0/16, from the address bytes (as ipaddress.is_link_local)."""
    if len(raw) == 16:
        return raw[0] == 0xFE and raw[1] & 0xC0 == 0x80
    return len(raw) == 4 and raw[0] == 169 and raw[1] == 254


def parse_addr_dump(
    datagrams: list[bytes], name_of: Callable[[int], str], *, link_local: bool = True
) -> tuple[HostAddress, ...]:
    """Every IPv4/IPv6 address (link-local ones only if ``link_local``); ``local`` as iproute2
    shows it (IFA_LOCAL, else IFA_ADDRESS)."""
    out: list[HostAddress] = []
    for buf, (family, prefixlen, _f, _scope, index), start, end in iter_bodies(datagrams, RTM_NEWADDR, IFADDRMSG):
        spans = pick(buf, start, end, WANTED) if family in FAMILIES else {}
        span = spans.get(IFA_LOCAL) or spans.get(IFA_ADDRESS)
        if span is None:
            continue
        raw = buf[span[0] : span[1]]
        if len(raw) != ADDR_LEN[family] or (not link_local and is_link_local(raw)):
            continue  # malformed, or link-local and not wanted
        addr = socket.inet_ntop(family, raw)  # C, and iproute2's own spelling
        out.append(HostAddress(dev=name_of(index), address=f"{addr}/{prefixlen}", family=FAMILIES[family]))
    return tuple(out)


def read_addresses(timeout: float = 10.0, *, link_local: bool = False) -> tuple[HostAddress, ...]:
    """The host's addresses, without link-local ones unless ``link_local``: every up link has
    an fe80::, no check reads them (``CheckContext.host_addresses`` drops them by the same
    rule), and naming 5,000 taps' costs 25 ms of syscalls.

    Raises CommandError (like the other fact readers) when the kernel cannot be asked."""
    return parse_addr_dump(fact_dump(RTM_GETADDR, timeout), link_namer(), link_local=link_local)
