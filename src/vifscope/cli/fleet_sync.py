"""``vifscope fleet sync``: every host's vifs, addresses and finding counts into the store
(the embedded SQLite file by default, PostgreSQL by URL), one transaction per host, the vifs'
history kept as intervals (see vifscope.fleet.history). The hosts: ``--inventory FILE``, else
the store's own hosts table (``vifscope fleet hosts``), read again every round.

``--daemon`` repeats it every ``--interval`` seconds until SIGTERM or SIGINT (the round in
progress is finished first). It holds each host's answers with the agents' ETags and asks
with ``If-None-Match``: a host whose every answer is a 304 changed nothing since its last
write, so only its ``fleet_hosts`` row is touched (no vif or address row is read or
written). The tags are kept only once a host's write committed.

Exit codes: 0 every host synced; 1 some host did not answer (its last good rows are kept);
2 usage; 3 the store is unavailable, or no host answered.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import emit_json, make_console
from vifscope.model.fleetvif import HostSync
from vifscope.report.documents import EXIT_OK, EXIT_PROBLEMS, EXIT_SOURCE, EXIT_USAGE

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vifscope.fleet.cache import AnswerCache
    from vifscope.fleet.history import SyncInput
    from vifscope.fleet.inventory import FleetHost, Inventory
    from vifscope.serve.fleetask import HostList
    from vifscope.sources.agents import AgentReply


def add_sync_options(q: argparse.ArgumentParser, positive_float: Any) -> None:
    q.add_argument(
        "--db",
        metavar="URL",
        help="the store: sqlite:////path.db or postgresql://... (default: $VIFSCOPE_DB, ...)",
    )
    q.add_argument("--daemon", action="store_true", help="sync again every --interval seconds until stopped")
    q.add_argument("--interval", type=positive_float, default=60.0, metavar="S", help="daemon rounds (default 60)")
    q.set_defaults(func=cmd_fleet_sync)


def write(engine: Engine, part: SyncInput, now: float, tag: str | None = None) -> HostSync:
    """One host's part in its own transaction: its vifs' history, or its error alone."""
    from vifscope.store.fleet import record_error, sync_host

    if part.record is None:
        return record_error(engine, part.host, part.error or "no answer", now)
    return sync_host(engine, part.host, part.record, part.states, part.addresses, now, tag)


def _one(engine: Engine, host: FleetHost, reply: AgentReply, now: float, cache: AnswerCache | None) -> HostSync:
    """Write one host's reply: only touched when every answer was a 304 and the host's rows
    were written from that same answer (the tags stored with them say so)."""
    from vifscope.fleet.cache import answer_tag
    from vifscope.fleet.history import sync_input
    from vifscope.fleet.merge import host_answer
    from vifscope.store.fleet import touch_host

    tag = answer_tag(reply)
    if reply.unchanged and tag is not None:
        vifs = touch_host(engine, host.name, tag, now)
        if vifs is not None:
            return HostSync(host.name, None, vifs)
    result = write(engine, sync_input(host_answer(host, reply.whole())), now, tag)
    if cache is not None and result.error is None:
        cache.keep(host, reply)  # in the store now: the next 304 means nothing to write
    return result


def sync_round(engine: Engine, inv: Inventory, args: argparse.Namespace, cache: AnswerCache | None = None) -> Round:
    """Ask every host, then write each answer (all stamped with the same time)."""
    from vifscope.cli.fleet_ask import ask_replies
    from vifscope.fleet.merge import DOCTOR_PATHS

    start = time.monotonic()
    replies = ask_replies(inv, DOCTOR_PATHS, args.timeout, args.concurrency, cache)
    now = time.time()
    results = [_one(engine, h, r, now, cache) for h, r in replies]
    if cache is not None:
        cache.prune({h.name for h in inv.hosts})
    unchanged = frozenset(h.name for h, r in replies if r.unchanged)
    return Round(results, unchanged, round(time.monotonic() - start, 3))


@dataclass(frozen=True)
class Round:
    results: list[HostSync]
    unchanged: frozenset[str]  # hosts whose agent answered 304 to every question
    seconds: float


def sync_document(url: str, rnd: Round) -> dict[str, Any]:
    from vifscope.store.url import redacted

    return {
        "store": redacted(url),
        "hosts": [
            {
                "host": r.host,
                "synced": r.error is None,
                "unchanged": r.host in rnd.unchanged,
                "vifs": r.vifs,
                "opened": r.opened,
                "closed": r.closed,
            }
            for r in rnd.results
        ],
        "host_errors": [{"host": r.host, "error": r.error} for r in rnd.results if r.error is not None],
        "seconds": rnd.seconds,
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
    same = sum(h["unchanged"] for h in hosts)
    line = (
        f"synced {len(synced)}/{len(hosts)} hosts into {doc['store']}: {sum(h['vifs'] for h in synced)} vifs, "
        f"{sum(h['opened'] for h in synced)} intervals opened, {sum(h['closed'] for h in synced)} closed"
        + (f"; {same} unchanged (304)" if same else "")
    )
    make_console().print(line, highlight=False, markup=False)


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _hosts(args: argparse.Namespace, engine: Engine, url: str) -> HostList:
    from vifscope.fleet.inventory import load_inventory
    from vifscope.serve.fleetask import FileHosts, StoreHosts
    from vifscope.store.url import redacted

    return FileHosts(load_inventory(args.inventory)) if args.inventory else StoreHosts(engine, redacted(url))


def _reread(hosts: HostList, last: Inventory, as_json: bool) -> Inventory:
    """The hosts for this round; the last round's when the list has become bad (said once a round)."""
    from vifscope.fleet.inventory import InventoryError

    try:
        return hosts.read()
    except InventoryError as exc:
        _fail(as_json, EXIT_USAGE, f"{exc} (syncing the hosts read before)", exc.hint)
        return last


def cmd_fleet_sync(args: argparse.Namespace) -> int:
    from vifscope.fleet.cache import AnswerCache
    from vifscope.fleet.inventory import InventoryError
    from vifscope.store.engine import StoreError, open_store
    from vifscope.store.url import StoreConfigError, load_store_config, resolve_url

    try:
        url = resolve_url(args.db, os.environ, load_store_config())
        engine = open_store(url)
        hosts = _hosts(args, engine, url)
        inv = hosts.read()
        stop, cache = (_stop_event(), AnswerCache()) if args.daemon else (None, None)
        while True:
            rnd = sync_round(engine, inv, args, cache)
            _print(sync_document(url, rnd), args.json)
            if stop is None or stop.wait(args.interval):
                return sync_exit(rnd.results) if stop is None else EXIT_OK
            inv = _reread(hosts, inv, args.json)
    except InventoryError as exc:
        return _fail(args.json, EXIT_USAGE, str(exc), exc.hint)
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
