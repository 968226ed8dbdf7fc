"""Read vifscope's DSCP table (``nft list table netdev vifscope_qos``) and run nft argv.

Only that table is ever listed: a missing table is "no marks", not an error. The text form is
parsed, not ``nft -j``: nftables 1.0.6 (this Debian's) leaves a netdev chain's hook device out
of its JSON, and the device is what ties a chain to its tap. Values print as names ("ef").
"""

from __future__ import annotations

import re
import subprocess

from vifscope.model.qosdscp import DSCP_FAMILY, DSCP_NAMES, DSCP_TABLE, DscpMark

CHAIN = re.compile(r"^\s*chain (\S+) \{")
DEVICE = re.compile(r'\bhook ingress device "?([^";\s]+)"?')
MARK = re.compile(r"^\s*(ip6?) dscp set (\S+)")
NFT_ONLY_NAMES = {"lephb": 1, "va": 44}  # names nft prints that RFC 2474/2597/3246 do not define


class NftUnavailable(RuntimeError):
    """nft is missing or refused to list the table for another reason than its absence."""


def _value(word: str) -> int | None:
    w = word.lower()
    if w in DSCP_NAMES or w in NFT_ONLY_NAMES:
        return DSCP_NAMES.get(w, NFT_ONLY_NAMES.get(w))
    try:
        return int(w, 0)
    except ValueError:
        return None


def parse_dscp_table(text: str) -> dict[str, DscpMark]:
    """Marks by tap (the chain's hook device) from ``nft list table netdev vifscope_qos``."""
    chains: list[tuple[str, str | None, dict[str, int]]] = []
    for line in text.splitlines():
        if m := CHAIN.match(line):
            chains.append((m.group(1), None, {}))
        elif chains and (d := DEVICE.search(line)):
            chains[-1] = (chains[-1][0], d.group(1), chains[-1][2])
        elif chains and (k := MARK.match(line)) and (v := _value(k.group(2))) is not None:
            chains[-1][2].setdefault(k.group(1), v)
    return {dev: DscpMark(dev, name, m.get("ip"), m.get("ip6")) for name, dev, m in chains if dev}


def read_dscp_marks() -> dict[str, DscpMark]:
    try:
        proc = subprocess.run(["nft", "list", "table", DSCP_FAMILY, DSCP_TABLE], capture_output=True, text=True)
    except OSError as exc:
        raise NftUnavailable(f"nft: {exc}") from exc
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr:
            return {}
        raise NftUnavailable(f"nft list table {DSCP_FAMILY} {DSCP_TABLE}: {proc.stderr.strip()}")
    return parse_dscp_table(proc.stdout)


def run_argv(argv: tuple[str, ...]) -> str | None:
    """Run one command (nft, virsh metadata); its error text, or None."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return (proc.stderr.strip() or f"exit {proc.returncode}") if proc.returncode else None
