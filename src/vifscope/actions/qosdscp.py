"""Set or clear one tap's DSCP mark in vifscope's nft table: plan (pure argv) -> run -> read
the table back -> verify -> on a mismatch delete the chain vifscope just made.

Only ``table netdev vifscope_qos`` is touched; the table itself is deleted when its last chain
goes. The chain hooks the tap's ingress (the guest's outbound) at priority -150, before any
tc-free netdev filtering a user may add at 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vifscope.model.qosdscp import DSCP_FAMILY, DSCP_TABLE, DscpMark, chain_name

Argv = tuple[str, ...]
NFT = ("nft",)


def set_plan(dev: str, value: int, present: DscpMark | None) -> tuple[Argv, ...]:
    """Table, chain (flushed when it exists), and one rule per IP family."""
    t = (DSCP_FAMILY, DSCP_TABLE)
    chain = present.chain if present else chain_name(dev)
    make = (
        (*NFT, "add", "table", *t),
        (*NFT, "add", "chain", *t, chain, "{", "type", "filter", "hook", "ingress",
         "device", f'"{dev}"', "priority", "-150", ";", "}"),
    )  # fmt: skip
    flush = ((*NFT, "flush", "chain", *t, chain),) if present else ()
    rules = tuple((*NFT, "add", "rule", *t, chain, fam, "dscp", "set", str(value), "counter") for fam in ("ip", "ip6"))
    return (*(() if present else make), *flush, *rules)


def clear_plan(present: DscpMark | None, others: int) -> tuple[Argv, ...]:
    """Delete the tap's chain; the table too when no other chain is left in it."""
    if present is None:
        return ()
    out: tuple[Argv, ...] = ((*NFT, "delete", "chain", DSCP_FAMILY, DSCP_TABLE, present.chain),)
    return out + (((*NFT, "delete", "table", DSCP_FAMILY, DSCP_TABLE),) if others == 0 else ())


@dataclass(frozen=True)
class DscpOutcome:
    status: str  # enforced / cleared / rolled_back / failed
    commands: tuple[Argv, ...]
    rollback_commands: tuple[Argv, ...] = ()
    in_force: DscpMark | None = None
    error: str | None = None


def carry_out(
    dev: str,
    value: int | None,
    read: Callable[[], dict[str, DscpMark]],
    run: Callable[[Argv], str | None],
) -> DscpOutcome:
    """``value`` None clears. Verified against a fresh read of the table."""
    before = read()
    present = before.get(dev)
    plan = set_plan(dev, value, present) if value is not None else clear_plan(present, len(before) - 1)
    done: list[Argv] = []
    for argv in plan:
        err = run(argv)
        done.append(argv)
        if err:
            return _undo(dev, present, read, run, tuple(done), err)
    after = read().get(dev)
    ok = after is None if value is None else (after is not None and after.ipv4 == value and after.ipv6 == value)
    if ok:
        return DscpOutcome("cleared" if value is None else "enforced", tuple(done), in_force=after)
    return _undo(dev, present, read, run, tuple(done), f"read back {after}, wanted {value}")


def _undo(
    dev: str,
    present: DscpMark | None,
    read: Callable[[], dict[str, DscpMark]],
    run: Callable[[Argv], str | None],
    done: tuple[Argv, ...],
    error: str,
) -> DscpOutcome:
    """Remove the chain vifscope made in this run (a pre-existing chain is left for the operator:
    its old rules were flushed, so the outcome says failed)."""
    if present is not None:
        return DscpOutcome("failed", done, error=error)
    now = read()
    back = clear_plan(now.get(dev), len(now) - 1)
    for argv in back:
        run(argv)
    return DscpOutcome("rolled_back", done, back, read().get(dev), error)
