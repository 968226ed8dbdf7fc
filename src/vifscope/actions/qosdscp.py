"""Set or clear one tap's DSCP mark in vifscope's nft table: plan (pure argv) -> run -> read
the table back -> verify -> on a mismatch delete the chain vifscope just made.

Only ``table netdev vifscope_qos`` is touched; the table itself is deleted when its last chain
goes. The chain hooks the tap's ingress (the guest's outbound) at priority -150, before any
tc-free netdev filtering a user may add at 0.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from vifscope.actions.audit import AuditLog
from vifscope.actions.qosapply import new_log
from vifscope.bind.qosdscp import mark_verdict
from vifscope.model import DeclaredVif
from vifscope.model.qosdscp import DSCP_FAMILY, DSCP_TABLE, DscpMark, chain_name
from vifscope.sources.kernel.nftdscp import read_dscp_marks, run_argv
from vifscope.sources.libvirt.qosmark import MARK_KEY, MARK_NS, render_marks
from vifscope.sources.qosset import read_domain_marks

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


def marks_command(uri: str, domain: str, marks: dict[str, int], flags: tuple[str, ...]) -> Argv:
    """``virsh metadata`` writing the domain's whole mark element (or removing it: none left)."""
    change = ("--key", MARK_KEY, "--set", render_marks(marks)) if marks else ("--remove",)
    return ("virsh", "-c", uri, "metadata", *change, *flags, "--", domain, MARK_NS)


@dataclass(frozen=True)
class DscpRequest:
    uri: str
    domain: str
    mac: str
    value: int | None  # None: remove the mark
    flags: tuple[str, ...]  # --live / --config for the metadata


def set_dscp(req: DscpRequest, audit: AuditLog, dev: str) -> DscpOutcome:
    """Mark (or unmark) ``dev``, verified in nft; then record it in the domain's metadata.
    Audit-logged as ``qos-dscp``."""
    log = new_log(audit, "qos-dscp", req.domain, req.mac)
    out = carry_out(dev, req.value, read_dscp_marks, run_argv)
    log("apply", "ok" if out.status in ("enforced", "cleared") else out.status, [shlex.join(c) for c in out.commands],
        out.error)  # fmt: skip
    if out.status not in ("enforced", "cleared"):
        return out
    before = read_domain_marks(req.uri, req.domain, live="--live" in req.flags)
    marks = {k: v for k, v in before.items() if k != req.mac}
    if req.value is not None:
        marks[req.mac] = req.value
    if marks == before:
        return out
    meta = marks_command(req.uri, req.domain, marks, req.flags)
    err = run_argv(meta)
    log("metadata", "failed" if err else "ok", [shlex.join(meta)], err)
    return replace(out, commands=(*out.commands, meta), error=err, status="failed" if err else out.status)


def heal_mark(
    dev: str,
    value: int | None,
    who: tuple[str, str],
    audit: AuditLog,
    read: Callable[[], dict[str, DscpMark]] = read_dscp_marks,
    run: Callable[[Argv], str | None] = run_argv,
) -> DscpOutcome:
    """``watch --heal``: the declared mark put back on a (re-created) tap, or (``value`` None) the
    chain of a tap that went away deleted. The metadata is not touched: it already says so.
    Audit-logged as ``qos-dscp`` for ``who`` (domain, MAC), phase ``heal`` / ``release``."""
    log = new_log(audit, "qos-dscp", *who)
    out = carry_out(dev, value, read, run)
    ok = out.status in ("enforced", "cleared")
    log("heal" if value is not None else "release", "ok" if ok else out.status,
        [shlex.join(c) for c in (*out.commands, *out.rollback_commands)], out.error)  # fmt: skip
    return out


def remark(
    vifs: Sequence[DeclaredVif],
    audit: AuditLog,
    *,
    dry_run: bool,
    read: Callable[[], dict[str, DscpMark]] = read_dscp_marks,
    run: Callable[[Argv], str | None] = run_argv,
) -> list[dict[str, Any]]:
    """Each vif's declared mark (``dscp_mark``) set again on its tap where nft's table lacks it
    or has another value: ``{domain, mac, target, was, declared, status, commands, error}`` per
    vif that needed it (``qos reapply``, ``watch --heal``). Raises NftUnavailable."""
    marks = read()
    docs: list[dict[str, Any]] = []
    for v in vifs:
        was = mark_verdict(v.dscp_mark, marks.get(v.target or ""))
        if was == "enforced" or v.dscp_mark is None:
            continue
        doc = {"domain": v.domain, "mac": v.mac, "target": v.target, "was": was, "declared": v.dscp_mark}
        if dry_run:
            docs.append(doc | {"status": "dry-run"})
            continue
        out = heal_mark(v.target or "", v.dscp_mark, (v.domain, v.mac or ""), audit, read, run)
        docs.append(doc | {"status": out.status, "commands": [shlex.join(c) for c in out.commands], "error": out.error})
    return docs
