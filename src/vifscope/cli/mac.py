"""``vifscope mac``: MAC address pools whose allocations cannot collide.

    mac pool add NAME --range A-B | --prefix 52:54:00:3a [--quarantine S]
    mac pool list | mac pool remove NAME [--force]
    mac allocate --pool NAME [--domain D] [--count N] | mac release MAC | mac list [--pool NAME]
    mac import [-c URI] | mac conflicts [-c URI]

Exit codes: 0 ok; 1 conflicts found (warning or error); 2 usage or refused (bad range,
overlap, unknown pool); 3 the store or libvirt is unavailable; 4 the pool is exhausted
(nothing was allocated: a provisioning script tells "grow the pool" from a typo or an outage).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import emit_json, make_console
from vifscope.model.mac import MacError, MacPool, MacRecord, advice, format_mac, parse_mac, parse_range, prefix_range
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS, EXIT_SOURCE, EXIT_USAGE, errors_list
from vifscope.report.mac import (
    print_allocated,
    print_conflicts,
    print_fields,
    print_pools,
    print_records,
    record_dict,
    with_title,
)
from vifscope.store.engine import StoreError, StoreRefused, StoreUnavailable, open_store, sqlite_missing
from vifscope.store.url import StoreConfig, StoreConfigError, load_store_config, redacted, resolve_url

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine

Handler = Callable[[argparse.Namespace], dict[str, Any]]
View = Callable[["Console", dict[str, Any]], None]  # an action's terminal view of its document


def _config() -> StoreConfig:
    return load_store_config()


def _engine(args: argparse.Namespace) -> Engine:
    return open_store(resolve_url(args.db, os.environ, _config()))


def pool_add(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.store.pools import add_pool

    if not args.name or len(args.name) > 64:
        raise StoreRefused(f"pool name must be 1 to 64 characters, got {args.name!r}")
    r = parse_range(args.range) if args.range else prefix_range(args.prefix)
    quarantine = _config().quarantine_s if args.quarantine is None else args.quarantine
    if quarantine < 0:
        raise StoreRefused(f"--quarantine must be >= 0 seconds, got {quarantine}")
    add_pool(_engine(args), MacPool(args.name, r, quarantine), time.time())
    return {"pool": args.name, "range": r.text(), "size": r.size, "quarantine_s": quarantine, "advice": list(advice(r))}


def pool_list(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.store.pools import pool_usages

    rows = [
        {
            "name": u.pool.name,
            "range": u.pool.range.text(),
            "size": u.pool.range.size,
            "used": u.used,
            "quarantined": u.quarantined,
            "free": u.free,
            "quarantine_s": u.pool.quarantine_s,
        }
        for u in pool_usages(_engine(args), time.time())
    ]
    return {"pools": rows}


def pool_remove(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.store.pools import remove_pool

    kept = remove_pool(_engine(args), args.name, args.force)
    return {"removed": args.name, "allocated_kept": kept}


def allocate(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.store.alloc import allocate as take

    engine = _engine(args)
    macs = take(
        engine,
        args.pool,
        args.count,
        now=time.time(),
        rng=random.Random(),
        domain=args.domain,
        host=socket.gethostname(),
    )
    return {"macs": [format_mac(m) for m in macs], "pool": args.pool, "domain": args.domain}


def release(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.store.alloc import release as give_back

    mac = parse_mac(args.mac)
    rec = give_back(
        _engine(args), mac, now=time.time(), default_quarantine_s=_config().quarantine_s, host=socket.gethostname()
    )
    return record_dict(rec)


def mac_list(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.store.alloc import records

    return {"macs": [record_dict(r) for r in records(_engine(args), args.pool)]}


def mac_import(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.checks.macs import in_use
    from vifscope.sources.libvirt.conn import read_libvirt, resolve_uri
    from vifscope.store.alloc import import_macs

    uri = resolve_uri(args.connect)
    engine = _engine(args)  # the store first: nothing is read from libvirt for a store that is down
    lv = read_libvirt(uri)
    pairs = [(mac, vifs[0].domain) for mac, vifs in in_use(lv.vifs).items()]
    res = import_macs(engine, pairs, host=lv.hostname, now=time.time())
    return {
        "host": lv.hostname,
        "uri": uri,
        "added": [format_mac(m) for m in res.added],
        "revived": [format_mac(m) for m in res.revived],
        "known": res.known,
        "source_errors": errors_list(lv.errors),
    }


def conflicts(args: argparse.Namespace) -> dict[str, Any]:
    from vifscope.bind.join import bind
    from vifscope.checks.macs import StoreView, host_findings, store_findings
    from vifscope.report.findings import finding_dict, severity_counts
    from vifscope.sources.libvirt.conn import LibvirtUnavailable, resolve_uri
    from vifscope.sources.snapshot import take_snapshot

    url = resolve_url(args.db, os.environ, _config())
    view = _store_view(url)
    snap = take_snapshot(resolve_uri(args.connect))
    lv_err = next((e for e in snap.errors if e.source == "libvirt"), None)
    if lv_err is not None:
        raise LibvirtUnavailable(lv_err.error, lv_err.hint)
    found = host_findings(snap, bind(snap))
    if view is not None:
        found += store_findings(snap.vifs, StoreView(view[0], view[1], snap.host, time.time()))
    return {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "store": None if view is None else redacted(url),
        "summary": severity_counts(found),
        "findings": [with_title(finding_dict(f)) for f in found],
        "source_errors": errors_list(snap.errors),
    }


def _store_view(url: str) -> tuple[tuple[MacRecord, ...], tuple[MacPool, ...]] | None:
    """The store's records and pools; None when the embedded file was never created (the host
    has no pools: only the host side is compared, and no empty database is left behind)."""
    if sqlite_missing(url):
        return None
    from vifscope.store.alloc import records
    from vifscope.store.pools import load_pools

    engine = open_store(url)
    with engine.connect() as conn:
        pools = load_pools(conn)
    return records(engine), pools


def _code(doc: dict[str, Any]) -> int:
    """1 when ``mac conflicts`` found a warning or an error (info is advice); else 0."""
    summary = doc.get("summary") or {}
    return EXIT_PROBLEMS if summary.get("error") or summary.get("warning") else EXIT_OK


def _human(view: View, doc: dict[str, Any]) -> None:
    view(make_console(), doc)
    err = make_console(stderr=True)
    for note in doc.get("advice", []):
        err.print(f"note: {note}", highlight=False)
    for e in doc.get("source_errors", []):
        err.print(f"warning: {e['source']}: {e['error']}", highlight=False)


def _fail(args: argparse.Namespace, code: int, message: str, hint: str) -> int:
    if args.json:
        emit_json({"error": message, "hint": hint or None, "exit": code})
    else:
        err = make_console(stderr=True)
        err.print(f"[bold red]error:[/] {message}", highlight=False)
        if hint:
            err.print(f"  hint: {hint}", highlight=False)
    return code


def run(args: argparse.Namespace) -> int:
    """Every action: its document, or one line and a hint with the exit code the error says."""
    from sqlalchemy.exc import OperationalError

    from vifscope.sources.libvirt.conn import LibvirtUnavailable

    handler: Handler = args.mac_handler
    try:
        doc = handler(args)
    except StoreError as exc:
        return _fail(args, exc.exit_code, str(exc), exc.hint)
    except (MacError, StoreConfigError) as exc:
        return _fail(args, StoreRefused.exit_code, str(exc), "")
    except LibvirtUnavailable as exc:
        return _fail(args, EXIT_SOURCE, str(exc), exc.hint)
    except OperationalError as exc:  # the database went away mid-transaction: nothing was committed
        msg = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return _fail(args, StoreUnavailable.exit_code, f"store error: {msg}", "is the database reachable? (--db URL)")
    if args.json:
        emit_json(doc)
    else:
        _human(args.mac_view, doc)
    return _code(doc)


def _leaf(
    sub: Any,
    common: Callable[[argparse.ArgumentParser], None],
    name: str,
    handler: Handler,
    help_: str,
    view: View = print_fields,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_)
    common(p)
    _db_option(p, argparse.SUPPRESS)
    p.set_defaults(func=run, mac_handler=handler, mac_view=view)
    return p


def _db_option(p: argparse.ArgumentParser, default: str | None) -> None:
    """``--db`` before or after the action (``mac --db URL pool add``, ``mac pool add --db URL``),
    as ``-c`` is: SUPPRESS on the inner parsers keeps an outer value unless given again."""
    p.add_argument(
        "--db", metavar="URL", default=default, help="store URL (default: $VIFSCOPE_DB, [store] url, or SQLite)"
    )


def _usage(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def missing(_args: argparse.Namespace) -> int:
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: an ACTION is required (see {p.prog} --help)", file=sys.stderr)
        return EXIT_USAGE

    return missing


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    mac = sub.add_parser(
        "mac",
        help="MAC address pools: allocations that cannot collide",
        epilog="exit codes: 0 ok, 1 conflicts found, 2 refused, 3 store or libvirt unavailable, 4 pool exhausted",
    )
    common(mac)
    _db_option(mac, None)
    # Not required=True: ``vifscope mac -c URI`` parses like every command (and then says what is missing).
    acts = mac.add_subparsers(dest="mac_command", metavar="ACTION")
    mac.set_defaults(func=_usage(mac))
    pool = acts.add_parser("pool", help="add, list or remove pools")
    common(pool)
    _db_option(pool, argparse.SUPPRESS)
    pools = pool.add_subparsers(dest="pool_command", metavar="ACTION")
    pool.set_defaults(func=_usage(pool))
    add = _leaf(pools, common, "add", pool_add, "add a pool (ranges of two pools never overlap)")
    add.add_argument("name")
    which = add.add_mutually_exclusive_group(required=True)
    which.add_argument("--range", metavar="FIRST-LAST", help="e.g. 52:54:00:10:00:00-52:54:00:1f:ff:ff")
    which.add_argument("--prefix", metavar="OCTETS", help="every MAC starting so, e.g. 52:54:00:3a")
    add.add_argument("--quarantine", type=int, metavar="SECONDS", help="a released MAC's wait before reuse")
    _leaf(pools, common, "list", pool_list, "pools with their size, used, quarantined and free", print_pools)
    rm = _leaf(pools, common, "remove", pool_remove, "remove a pool")
    rm.add_argument("name")
    rm.add_argument("--force", action="store_true", help="even with allocations (their records stay)")
    al = _leaf(acts, common, "allocate", allocate, "allocate MACs from a pool (all or none)", print_allocated)
    al.add_argument("--pool", required=True, metavar="NAME")
    al.add_argument("--domain", metavar="NAME", help="record the domain they are for")
    al.add_argument("--count", type=int, default=1, metavar="N")
    rel = _leaf(acts, common, "release", release, "release a MAC (quarantined before reuse)")
    rel.add_argument("mac")
    ls = _leaf(acts, common, "list", mac_list, "MACs the store holds", print_records)
    ls.add_argument("--pool", metavar="NAME", help="only this pool's range")
    _leaf(acts, common, "import", mac_import, "record every MAC this host's domains use (read-only libvirt)")
    _leaf(
        acts,
        common,
        "conflicts",
        conflicts,
        "duplicate MACs on this host, and store records that disagree",
        print_conflicts,
    )
