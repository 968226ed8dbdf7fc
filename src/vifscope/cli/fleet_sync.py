"""``vifscope fleet sync``: every host's vifs, addresses and finding counts into the store
(the embedded SQLite file by default, PostgreSQL by URL), one transaction per host, the vifs'
history kept as intervals (see vifscope.fleet.history). ``--daemon`` repeats it every
``--interval`` seconds until SIGTERM or SIGINT (the round in progress is finished first).

Exit codes: 0 every host synced; 1 some host did not answer (its last good rows are kept);
2 usage; 3 the store is unavailable, or no host answered.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import emit_json, make_console
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS, EXIT_SOURCE, EXIT_USAGE

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vifscope.fleet.history import SyncInput
    from vifscope.fleet.inventory import Inventory
    from vifscope.model.fleetvif import HostSync


def add_sync_options(q: argparse.ArgumentParser, positive_float: Any) -> None:
    q.add_argument("--db", metavar="URL", help="sqlite:////path.db or postgresql://... (default: $VIFSCOPE_DB, ...)")
    q.add_argument("--daemon", action="store_true", help="sync again every --interval seconds until stopped")
    q.add_argument("--interval", type=positive_float, default=60.0, metavar="S", help="daemon rounds (default 60)")
    q.set_defaults(func=cmd_fleet_sync)


def write(engine: Engine, part: SyncInput, now: float) -> HostSync:
    """One host's part in its own transaction: its vifs' history, or its error alone."""
    from vifscope.store.fleet import record_error, sync_host

    if part.record is None:
        return record_error(engine, part.host, part.error or "no answer", now)
    return sync_host(engine, part.host, part.record, part.states, part.addresses, now)


def sync_round(engine: Engine, inv: Inventory, args: argparse.Namespace) -> list[HostSync]:
    """Ask every host, then write each answer (all stamped with the same time)."""
    from vifscope.cli.fleet_ask import ask
    from vifscope.fleet.history import sync_input
    from vifscope.fleet.merge import DOCTOR_PATHS

    answers = ask(inv, DOCTOR_PATHS, args.timeout, args.concurrency)
    now = time.time()
    return [write(engine, sync_input(a), now) for a in answers]


def sync_document(url: str, results: list[HostSync]) -> dict[str, Any]:
    from vifscope.store.url import redacted

    return {
        "store": redacted(url),
        "hosts": [
            {"host": r.host, "synced": r.error is None, "vifs": r.vifs, "opened": r.opened, "closed": r.closed}
            for r in results
        ],
        "host_errors": [{"host": r.host, "error": r.error} for r in results if r.error is not None],
    }


def sync_exit(results: list[HostSync]) -> int:
    failed = sum(r.error is not None for r in results)
    if results and failed == len(results):
        return EXIT_SOURCE
    return EXIT_PROBLEMS if failed else EXIT_OK


def _print(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
        return
    from vifscope.fleet.tables import print_host_errors

    print_host_errors(make_console(stderr=True), doc["host_errors"])
    hosts = doc["hosts"]
    synced = [h for h in hosts if h["synced"]]
    line = (
        f"synced {len(synced)}/{len(hosts)} hosts into {doc['store']}: {sum(h['vifs'] for h in synced)} vifs, "
        f"{sum(h['opened'] for h in synced)} intervals opened, {sum(h['closed'] for h in synced)} closed"
    )
    make_console().print(line, highlight=False, markup=False)


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_fleet_sync(args: argparse.Namespace) -> int:
    from vifscope.cli.fleet_ask import load_or_say
    from vifscope.store.engine import StoreError, open_store
    from vifscope.store.url import StoreConfigError, load_store_config, resolve_url

    inv = load_or_say(args.inventory)
    if inv is None:
        return EXIT_USAGE
    try:
        url = resolve_url(args.db, os.environ, load_store_config())
        engine = open_store(url)
        stop = _stop_event() if args.daemon else None
        while True:
            results = sync_round(engine, inv, args)
            _print(sync_document(url, results), args.json)
            if stop is None or stop.wait(args.interval):
                return sync_exit(results) if stop is None else EXIT_OK
    except StoreError as exc:
        return _fail(args.json, exc.exit_code, str(exc), exc.hint)
    except StoreConfigError as exc:
        return _fail(args.json, EXIT_USAGE, str(exc), "")


def _fail(as_json: bool, code: int, message: str, hint: str) -> int:
    if as_json:
        emit_json({"error": message, "hint": hint or None, "exit": code})
    else:
        err = make_console(stderr=True)
        err.print(f"error: {message}", highlight=False, markup=False)
        if hint:
            err.print(f"  hint: {hint}", highlight=False, markup=False)
    return code
