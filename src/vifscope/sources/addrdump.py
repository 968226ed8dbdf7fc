"""Host addresses from one RTM_GETADDR dump (what ``ip -j addr show`` lists under addr_info).

Why not ``ip -j addr show``: it prints every link with all its details whether or not it has
an address: 0.2 s of JSON at 5,000 taps for the handful of addresses doctor needs. The
address dump carries only the addresses (linux/if_addr.h: ifaddrmsg + IFA_* attributes).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from vifscope.model import HostAddress
from vifscope.sources.cmd import CommandError
from vifscope.sources.rtnl import IFADDRMSG, RTM_GETADDR, RTM_NEWADDR, dump, iter_bodies, link_namer, pick

IFA_ADDRESS, IFA_LOCAL = 1, 2
RT_SCOPE_LINK = 253  # fe80::/10, 169.254/16: valid on one link only
FAMILIES: dict[int, str] = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}
WANTED = frozenset({IFA_ADDRESS, IFA_LOCAL})


def parse_addr_dump(
    datagrams: list[bytes], name_of: Callable[[int], str], *, link_local: bool = True
) -> tuple[HostAddress, ...]:
    """Every IPv4/IPv6 address (link-scope ones only if ``link_local``); ``local`` as iproute2
    shows it (IFA_LOCAL, else IFA_ADDRESS)."""
    out: list[HostAddress] = []
    for buf, (family, prefixlen, _f, scope, index), start, end in iter_bodies(datagrams, RTM_NEWADDR, IFADDRMSG):
        if scope == RT_SCOPE_LINK and not link_local:
            continue
        spans = pick(buf, start, end, WANTED) if family in FAMILIES else {}
        span = spans.get(IFA_LOCAL) or spans.get(IFA_ADDRESS)
        if span is None:
            continue
        addr = socket.inet_ntop(family, buf[span[0] : span[1]])  # C, and iproute2's own spelling
        out.append(HostAddress(dev=name_of(index), address=f"{addr}/{prefixlen}", family=FAMILIES[family]))
    return tuple(out)


def read_addresses(timeout: float = 10.0, *, link_local: bool = False) -> tuple[HostAddress, ...]:
    """The host's addresses, without link-scope ones unless ``link_local``: every up link has
    an fe80::, no check reads them, and naming 5,000 taps' costs 25 ms of syscalls.

    Raises CommandError (like the other fact readers) when the kernel cannot be asked."""
    try:
        datagrams, _interrupted = dump(RTM_GETADDR, timeout)
    except OSError as exc:  # RtnlError included
        raise CommandError(f"rtnetlink address dump failed: {exc}") from exc
    return parse_addr_dump(datagrams, link_namer(), link_local=link_local)
