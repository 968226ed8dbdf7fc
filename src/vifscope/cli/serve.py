"""``vifscope serve``: the HTTP API and the live web page (FastAPI on uvicorn). Thin: settings,
the listening socket, then uvicorn runs ``serve.app.create_app``.

Listens on 127.0.0.1:8777 by default; a non-loopback address is refused unless a bearer
token is configured (the API would otherwise expose the host to the network with no way to
tell who may change it). Exit codes: 0 stopped cleanly, 2 usage / settings, 3 cannot listen.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.text import Text

from vifscope.fleet.inventory import InventoryError
from vifscope.report import documents as report
from vifscope.report.tables import make_console
from vifscope.serve.config import (
    DEFAULT_LISTEN,
    ServeConfig,
    ServeConfigError,
    is_loopback,
    load_serve_config,
    load_token,
    parse_listen,
    tls_context,
    with_overrides,
)
from vifscope.sources.libvirt.conn import resolve_uri

if TYPE_CHECKING:
    from vifscope.serve.fleetask import FleetHub
    from vifscope.serve.flows import ServeFlows


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a count >= 1, got {text!r}")
    return int(text)


def _bytes(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a byte count >= 1, got {text!r}")
    return int(text)


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("serve", help="HTTP API and a live web page with the topology graph")
    common(p)
    p.add_argument("--listen", metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}; port 0 picks a free one")
    p.add_argument("--config", type=Path, metavar="PATH", help="[serve] settings (default /etc/vifscope/vifscope.toml)")
    p.add_argument("--token-file", type=Path, metavar="PATH", help="bearer token for the POST endpoints (mode 0600)")
    p.add_argument("--audit-log", type=Path, metavar="PATH", help="default /var/log/vifscope/actions.jsonl")
    p.add_argument("--interval", type=_positive, metavar="S", help="seconds between live updates (default 1)")
    p.add_argument("--timeout", type=_positive, metavar="S", help="deadline per source in seconds (default 3)")
    p.add_argument("--host-id", metavar="ID", help="this host's identity for a fleet hub (default /etc/machine-id)")
    p.add_argument("--read-token-file", type=Path, metavar="PATH", help="reads need this bearer token too (mode 0600)")
    p.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS with this certificate (chain)")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key")
    p.add_argument(
        "--fleet",
        nargs="?",
        const="",
        metavar="INVENTORY",
        help="also be the fleet's hub: /fleet, /api/v1/fleet; hosts from this YAML file, or with --db from the store",
    )
    p.add_argument("--db", metavar="URL", help="with --fleet (no file): the store whose hosts table is the inventory")
    p.add_argument("--fleet-timeout", type=_positive, default=10.0, metavar="S", help="per agent (default 10)")
    p.add_argument("--flows", action="store_true", help="collect flows (a BPF program on each running vif's tap)")
    p.add_argument("--max-flows", type=_count, default=65536, metavar="N", help="flow map size (LRU; default 65536)")
    p.add_argument(
        "--flows-window", type=_positive, default=10.0, metavar="S", help="talkers over the last S seconds (default 10)"
    )
    p.add_argument("--max-body", type=_bytes, metavar="BYTES", help="request body limit, 413 beyond (default 65536)")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr (never a header: no token)")
    p.set_defaults(func=run_serve)


def settings(args: argparse.Namespace) -> tuple[ServeConfig, str, int, str | None]:
    """(config, host, port, token) or ServeConfigError."""
    cfg = with_overrides(
        load_serve_config(args.config),
        listen=args.listen,
        token_file=args.token_file,
        audit_log=args.audit_log,
        interval=args.interval,
        timeout=args.timeout,
        host_id=args.host_id,
        read_token_file=args.read_token_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        max_body=args.max_body,
    )
    host, port = parse_listen(cfg.listen)
    tls_context(cfg.tls_cert, cfg.tls_key)  # fails here, with a hint, not inside uvicorn
    token = load_token(cfg.token_file) if cfg.token_file else None
    if token is None and cfg.read_token_file is None and not is_loopback(host):
        raise ServeConfigError(
            f"refusing to listen on {host} without an API token: anyone who can reach it would see this host",
            "set [serve] token_file or read_token_file (--token-file, --read-token-file), or listen on 127.0.0.1",
        )
    return cfg, host, port, token


def _hub(args: argparse.Namespace) -> FleetHub | None:
    """The fleet hub's settings, or None; InventoryError for a bad inventory (or neither or
    both of a file and --db), StoreError for a store that cannot be read."""
    if args.fleet is None:
        if args.db is not None:
            raise InventoryError("--db is the fleet hub's inventory: it needs --fleet", "serve --fleet --db URL")
        return None
    if bool(args.fleet) == (args.db is not None):
        raise InventoryError(
            "--fleet needs exactly one inventory: a YAML file or --db URL",
            "serve --fleet FILE, or serve --fleet --db URL",
        )
    from vifscope.cli.fleet_ask import host_list
    from vifscope.serve.fleetask import FleetHub
    from vifscope.store.engine import StoreError
    from vifscope.store.url import StoreConfigError

    try:
        hosts = host_list(Path(args.fleet) if args.fleet else None, args.db)
        hosts.read()  # a bad or empty list fails here, with its hint, not on the first page load
    except StoreError as exc:
        raise InventoryError(str(exc), exc.hint, exc.exit_code) from exc
    except StoreConfigError as exc:
        raise InventoryError(str(exc)) from exc
    return FleetHub(hosts, timeout=args.fleet_timeout)


def listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}/"


def run_serve(args: argparse.Namespace) -> int:
    err = make_console(stderr=True)
    try:
        cfg, host, port, token = settings(args)
        reader = load_token(cfg.read_token_file) if cfg.read_token_file else None
        hub = _hub(args)
    except (ServeConfigError, InventoryError) as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))  # Text: YAML's "[...]" is not markup
        if exc.hint:
            err.print(Text(f"  hint: {exc.hint}"))
        return exc.exit_code if isinstance(exc, InventoryError) else report.EXIT_USAGE
    try:
        sock = listen_socket(host, port)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}", highlight=False)
        err.print("  hint: is another vifscope serve running there? pick another port with --listen", highlight=False)
        return report.EXIT_SOURCE
    import uvicorn  # here: loading uvicorn and FastAPI costs ~0.5 s that other commands need not pay

    from vifscope.serve.app import create_app
    from vifscope.serve.backend import Backend

    uri = resolve_uri(args.connect)
    flows = _flows(args)
    app = create_app(Backend.for_host(uri, cfg, token, reader, hub, flows))
    tls = cfg.tls_cert is not None
    url = _url(sock, tls)
    if args.json:
        print(json.dumps({"event": "listening", "url": url, "uri": uri, "mutations": token is not None}), flush=True)
    else:
        mode = ("read-write (token)" if token else "read-only") + (", reads need a token" if reader else "")
        err.print(f"vifscope serve: {url} (libvirt {uri}, {mode}); API docs at {url}docs", highlight=False)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=args.access_log,
        timeout_graceful_shutdown=3,
        lifespan="on",
        ssl_certfile=cfg.tls_cert if tls else None,
        ssl_keyfile=cfg.tls_key if tls else None,
    )
    if args.access_log:
        _access_log_to_stderr()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler it
    # found: a no-op one makes that a clean exit 0 (what service managers expect), not -15.
    signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if flows is not None:
            flows.close()  # the app's shutdown did already, unless uvicorn never started it
    sys.stdout.flush()
    return report.EXIT_OK


def _flows(args: argparse.Namespace) -> ServeFlows | None:
    """serve --flows: the collector, loaded by the app's first follow pass (a host without BPF
    still serves; the flows route says why there are none)."""
    if not args.flows:
        return None
    from vifscope.exporter.flows import FlowTracker
    from vifscope.serve.flows import ServeFlows

    return ServeFlows(FlowTracker(max_flows=args.max_flows), args.flows_window)


class _NoQuery(logging.Filter):
    """uvicorn logs the path with its query string; a client may have put a secret there (the
    token belongs in the Authorization header, which is never logged): log the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?[query not logged]", *args[3:])
        return True


def _access_log_to_stderr() -> None:
    """uvicorn's access lines are INFO (its log_level here is warning) and go to stdout, where
    ``--json`` prints its events: raise the access logger to INFO and point it at stderr."""
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)
    access.addFilter(_NoQuery())
    for handler in access.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    return None
