"""``vifscope fleet hosts add|remove|list``: the fleet's inventory kept in the store (the
``fleet_inventory`` table), for ``fleet status|doctor|sync --db URL`` and ``serve --fleet
--db URL`` instead of a YAML file. An entry is checked by the file's rules before it is
written (name, an http(s) base URL, token_file, ca_file, labels).

Exit codes: 0 done; 2 usage (a bad entry, a name taken without --replace, no such host);
3 the store is unavailable.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vifscope.cli.common import emit_json, make_console
from vifscope.report.documents import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from vifscope.store.inventory import InventoryRow


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"a label is KEY=VALUE, got {text!r}")
    return key, value


def add_hosts_parser(fleet: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = fleet.add_parser("hosts", help="the fleet's inventory kept in the store (instead of --inventory FILE)")
    sub = p.add_subparsers(dest="hosts_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a host (an agent's base URL)")
    rm = sub.add_parser("remove", help="remove a host")
    ls = sub.add_parser("list", help="every host")
    for q in (add, rm, ls):
        common(q)
        q.add_argument(
            "--db", metavar="URL", help="sqlite:////path.db or postgresql://... (default: $VIFSCOPE_DB, ...)"
        )
    add.add_argument("name", help="the host's name in every fleet view")
    add.add_argument("url", help="its agent's base URL, e.g. https://10.0.0.11:8777/")
    add.add_argument("--token-file", metavar="PATH", help="its read token, sent as a bearer token")
    add.add_argument("--ca-file", metavar="PATH", help="the CA its https certificate is checked against")
    add.add_argument("--label", type=_label, action="append", default=[], metavar="KEY=VALUE", help="repeatable")
    add.add_argument("--replace", action="store_true", help="replace a host of that name")
    rm.add_argument("name")
    add.set_defaults(func=cmd_hosts_add)
    rm.set_defaults(func=cmd_hosts_remove)
    ls.set_defaults(func=cmd_hosts_list)


def _engine(db: str | None) -> tuple[Engine, str]:
    from vifscope.store.engine import open_store
    from vifscope.store.url import load_store_config, redacted, resolve_url

    url = resolve_url(db, os.environ, load_store_config())
    return open_store(url), redacted(url)


def _run(args: argparse.Namespace, action: Callable[[Engine, str], int]) -> int:
    from vifscope.cli.fleet_ask import say
    from vifscope.fleet.inventory import InventoryError
    from vifscope.store.engine import StoreError
    from vifscope.store.url import StoreConfigError

    try:
        engine, where = _engine(args.db)
        try:
            return action(engine, where)
        finally:
            engine.dispose()
    except (InventoryError, StoreError) as exc:
        say(str(exc), exc.hint)
        return exc.exit_code
    except StoreConfigError as exc:
        say(str(exc), "")
        return EXIT_USAGE


def _row(args: argparse.Namespace) -> InventoryRow:
    """The entry checked by the inventory file's rules (InventoryError), as a row."""
    from vifscope.fleet.inventory import parse_host
    from vifscope.store.inventory import InventoryRow

    raw: dict[str, Any] = {"name": args.name, "url": args.url, "labels": dict(args.label)}
    raw |= {k: v for k, v in (("token_file", args.token_file), ("ca_file", args.ca_file)) if v is not None}
    h = parse_host(raw, "fleet hosts add")
    paths = (str(h.token_file) if h.token_file else None, str(h.ca_file) if h.ca_file else None)
    return InventoryRow(h.name, h.url, *paths, h.labels)


def cmd_hosts_add(args: argparse.Namespace) -> int:
    from vifscope.fleet.inventory import InventoryError
    from vifscope.store.inventory import add_host

    def action(engine: Engine, where: str) -> int:
        row = _row(args)
        if not add_host(engine, row, args.replace):
            raise InventoryError(
                f"{where}: host {row.name!r} is already in the inventory", "add --replace, or remove it"
            )
        _done(args.json, {"added": row.entry()}, f"added {row.name} ({row.url}) to {where}")
        return EXIT_OK

    return _run(args, action)


def cmd_hosts_remove(args: argparse.Namespace) -> int:
    from vifscope.fleet.inventory import InventoryError
    from vifscope.store.inventory import remove_host

    def action(engine: Engine, where: str) -> int:
        if not remove_host(engine, args.name):
            raise InventoryError(f"{where}: no host {args.name!r} in the inventory", "vifscope fleet hosts list")
        _done(args.json, {"removed": args.name}, f"removed {args.name} from {where}")
        return EXIT_OK

    return _run(args, action)


def cmd_hosts_list(args: argparse.Namespace) -> int:
    from vifscope.store.inventory import list_hosts

    def action(engine: Engine, where: str) -> int:
        rows = list_hosts(engine)
        if args.json:
            emit_json({"store": where, "hosts": [r.entry() for r in rows]})
            return EXIT_OK
        from rich.table import Table
        from rich.text import Text

        table = Table(header_style="bold", pad_edge=False)
        for col in ("NAME", "URL", "TOKEN FILE", "LABELS"):
            table.add_column(col, overflow="fold")
        for r in rows:
            labels = ",".join(f"{k}={v}" for k, v in r.labels)
            table.add_row(*(Text(c or "-") for c in (r.name, r.url, r.token_file, labels)))
        make_console().print(table)
        make_console().print(f"{len(rows)} host(s) in {where}", highlight=False, markup=False)
        return EXIT_OK

    return _run(args, action)


def _done(as_json: bool, doc: dict[str, Any], line: str) -> None:
    if as_json:
        emit_json(doc)
    else:
        make_console().print(line, highlight=False, markup=False)
