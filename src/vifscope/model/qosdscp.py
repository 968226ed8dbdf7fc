"""Priority marking of a guest's outbound traffic (DSCP), which libvirt lacks. Pure data.

vifscope keeps every mark in ONE nftables table of its own, ``table netdev vifscope_qos``: per
tap a base chain on the tap's ingress hook (what the guest sends enters the host there) with
``ip dscp set N`` and ``ip6 dscp set N``. No other table is ever read or written. 802.1p (VLAN
PCP) is not offered: it needs a VLAN tag, and this lab's kernel has no CONFIG_VLAN_8021Q.
"""

from __future__ import annotations

from dataclasses import dataclass

DSCP_TABLE = "vifscope_qos"
DSCP_FAMILY = "netdev"
CHAIN_PREFIX = "tap_"
# RFC 2474 class selectors, RFC 2597 assured forwarding, RFC 3246 expedited forwarding
DSCP_NAMES: dict[str, int] = {
    **{f"cs{i}": i * 8 for i in range(8)},
    **{f"af{c}{d}": c * 8 + d * 2 for c in range(1, 5) for d in range(1, 4)},
    "ef": 46,
    "be": 0,
}


class DscpError(ValueError):
    """Not a DSCP name or a number 0-63."""


def parse_dscp(text: str) -> int:
    value = text.strip().lower()
    if value in DSCP_NAMES:
        return DSCP_NAMES[value]
    if value.isdigit() and 0 <= int(value) <= 63:
        return int(value)
    raise DscpError(f"--dscp {text!r}: a name ({', '.join(sorted(DSCP_NAMES))}) or a number 0-63")


def dscp_name(value: int) -> str:
    """The usual name of a DSCP value ("ef", "af41"), else the number."""
    return next((n for n, v in DSCP_NAMES.items() if v == value and n != "be"), str(value))


def chain_name(dev: str) -> str:
    """nft identifiers allow letters, digits, ``_``, ``.`` and ``/``: a tap name's ``-`` becomes
    ``_``. The chain is matched to its tap by its hook device, never by this name."""
    return CHAIN_PREFIX + "".join(c if c.isalnum() or c in "_." else "_" for c in dev)


@dataclass(frozen=True)
class DscpMark:
    """The marks one tap's chain sets (None: no rule for that family), read from nft."""

    dev: str
    chain: str
    ipv4: int | None = None
    ipv6: int | None = None

    @property
    def value(self) -> int | None:
        """The mark when both families get the same one (as vifscope sets it), else None."""
        return self.ipv4 if self.ipv4 == self.ipv6 else None
