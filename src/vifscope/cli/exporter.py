"""``vifscope exporter``: serve ``/metrics`` over HTTP (or print one scrape with ``--once``).

Thin: the metrics are built by ``vifscope.exporter.collector``; this module parses arguments, listens,
and answers requests. Prometheus sends ``X-Prometheus-Scrape-Timeout-Seconds``; the sources'
deadline is kept under it so a slow source costs its series, never the whole scrape.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from vifscope.checks import ConfigError, load_config
from vifscope.exporter.checks import doctor_checks
from vifscope.exporter.collector import CONTENT_TYPE, Exporter, families, render
from vifscope.exporter.encoding import GzipMemo
from vifscope.exporter.flows import FlowTracker
from vifscope.exporter.worker import ProcessChecks, WorkerSpec
from vifscope.report.documents import EXIT_OK, EXIT_SOURCE, EXIT_USAGE, REQUIRED_SOURCES
from vifscope.sources.audit_log import DEFAULT_AUDIT_LOG
from vifscope.sources.libvirt.conn import resolve_uri
from vifscope.sources.libvirt.declared import DEFAULT_MAX_AGE

SCRAPE_MARGIN = 0.5  # seconds kept free under Prometheus' scrape timeout for bind + render
# Not 9177: Prometheus' default port allocations give it to the libvirt exporter, which Debian's
# prometheus-libvirt-exporter listens on, and a KVM host runs both. 9100-9999 is fully allocated,
# new allocations count up from 10000; 18437 ("VIFS" on a phone keypad, +10000) is on no list,
# in no /etc/services, under Linux's ephemeral ports (32768+), above any plausible VNC autoport.
DEFAULT_LISTEN = "127.0.0.1:18437"
# A client that sends its request or reads its answer slower than this is dropped: each client
# has its own thread and holds no lock, so it starves nobody, but it must not keep a thread forever.
# Generous: a 15 MB plain body to a slow link; Prometheus reads ~1 MB gzipped in milliseconds.
CLIENT_TIMEOUT = 60.0
LANDING = b"<html><body><h1>vifscope exporter</h1><p><a href='/metrics'>/metrics</a></p></body></html>\n"


class UsageError(ValueError):
    """A bad --listen value."""


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("exporter", help="Prometheus exporter: per-vif verdicts and counters on /metrics")
    common(p)
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}")
    p.add_argument("--timeout", type=float, default=3.0, help="deadline per source in seconds (default 3)")
    p.add_argument("--audit-log", type=Path, default=DEFAULT_AUDIT_LOG, help="actions audit log (heal counts)")
    p.add_argument(
        "--config", type=Path, default=None, help="doctor's thresholds file (default /etc/vifscope/vifscope.toml)"
    )
    p.add_argument("--no-checks", action="store_true", help="no vifscope_findings (skips the deep host facts)")
    p.add_argument(
        "--checks-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="run doctor's checks this often on their own thread, scrapes serve the latest run "
        "(default 60; 0: inside every scrape)",
    )
    p.add_argument(
        "--declared-max-age",
        type=float,
        default=DEFAULT_MAX_AGE,
        metavar="SECONDS",
        help="keep domain XML between scrapes, re-read on libvirt events, state changes or after "
        f"this long (default {DEFAULT_MAX_AGE:g}; 0: re-read every scrape)",
    )
    p.add_argument("--once", action="store_true", help="print one scrape to stdout and exit")
    p.add_argument(
        "--flows",
        action="store_true",
        help="also per-vif talkers: a BPF program on every running vif's tap (vifscope_vif_flow_*_total)",
    )
    p.add_argument("--flows-top", type=int, default=5, metavar="N", help="peers per vif with --flows (default 5)")
    p.add_argument("--max-flows", type=int, default=65536, metavar="N", help="flow map size (LRU; default 65536)")
    p.set_defaults(func=run_exporter)


def check_durations(args: argparse.Namespace) -> None:
    """Raises UsageError for a negative --checks-interval / --declared-max-age."""
    for flag in ("checks_interval", "declared_max_age"):
        if getattr(args, flag) < 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag):g}")
    for flag in ("flows_top", "max_flows"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:18437', '[::1]:18437', ':18437' (all addresses). Raises UsageError."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def server_class(host: str) -> type[ThreadingHTTPServer]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        # socketserver's default backlog is 5: fifty scrapers connecting at once overflowed it,
        # and a dropped SYN is retried after a second (p99 of 0.7 s at 100 vifs, bench/load.py).
        request_queue_size = socket.SOMAXCONN

    return Server


def _deadline(configured: float, header: str | None) -> float:
    try:
        scrape_timeout = float(header) if header else None
    except ValueError:
        scrape_timeout = None
    if scrape_timeout is None:
        return configured
    return max(0.1, min(configured, scrape_timeout - SCRAPE_MARGIN))


def make_handler(exporter: Exporter, timeout: float, log: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    gzip = GzipMemo()

    class Handler(BaseHTTPRequestHandler):
        server_version = "vifscope"
        timeout = CLIENT_TIMEOUT  # socket timeout: a stalled request line or read ends the connection

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._metrics()
            elif path == "/":
                self._send(200, "text/html; charset=utf-8", LANDING)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics\n")

        def _metrics(self) -> None:
            limit = _deadline(timeout, self.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
            try:
                # Single-flight: a scrape arriving during a collection shares it, its body and its gzip.
                body, headers = gzip.negotiate(exporter.render_metrics(limit), self.headers.get("Accept-Encoding"))
            except Exception as exc:  # a bug, not a source: answer 500 and log the traceback
                log(f"scrape failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                self._send(500, "text/plain; charset=utf-8", f"scrape failed: {exc}\n".encode())
                return
            # Written with no lock held: a client reading 1 byte/s only keeps its own thread.
            self._send(200, CONTENT_TYPE, body, headers)

        def _send(self, code: int, ctype: str, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers or ():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError as exc:  # the client left or stalled past CLIENT_TIMEOUT: its loss, one line
                self.close_connection = True
                log(f"client {self.client_address[0]}: answer not delivered: {type(exc).__name__}: {exc}")

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per scrape would flood the log; failures are logged above

    return Handler


def _exporter(args: argparse.Namespace) -> tuple[Exporter, ProcessChecks | None]:
    """The exporter, and its check worker when checks run in the background (to stop it at
    exit). Raises ConfigError for a bad --config."""
    uri = resolve_uri(args.connect)
    config = None if args.no_checks else load_config(args.config)
    # --once is one scrape: checks inline, nothing worth keeping between scrapes.
    max_age = args.declared_max_age if args.declared_max_age > 0 and not args.once else None
    background = config is not None and args.checks_interval > 0 and not args.once
    worker = ProcessChecks(WorkerSpec(uri, args.timeout, max_age, config)) if background else None
    exporter = Exporter(
        uri,
        timeout=args.timeout,
        audit_log=args.audit_log,
        checks=doctor_checks(config) if config is not None and not background else None,
        checks_interval=args.checks_interval if background else 0.0,
        background_checks=worker,
        declared_max_age=max_age,
        log=_stderr,
        flows=FlowTracker(args.flows_top, args.max_flows) if args.flows else None,
    )
    return exporter, worker


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _once(exporter: Exporter, as_json: bool) -> int:
    """One scrape to stdout; exit 3 when a source every answer needs (libvirt, netlink) failed."""
    scrape = exporter.scrape()
    if as_json:
        samples = [
            {"name": fam.name, "labels": dict(zip(fam.labels, values, strict=True)), "value": value}
            for fam in families(scrape)
            for values, value in fam.rows
        ]
        sys.stdout.write(json.dumps({"metrics": samples}) + "\n")
    else:
        sys.stdout.write(render(scrape).decode())
    failed = [s for s in REQUIRED_SOURCES if scrape.snapshot.failed(s)]
    return EXIT_SOURCE if failed else EXIT_OK


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(EXIT_OK)


def run_exporter(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        host, port = parse_listen(args.listen)
        check_durations(args)
    except UsageError as exc:
        err.write(f"error: {exc}\n  hint: e.g. --listen {DEFAULT_LISTEN} --checks-interval 60\n")
        return EXIT_USAGE
    try:
        exporter, worker = _exporter(args)
    except ConfigError as exc:
        err.write(f"error: {exc}\n  hint: see 'vifscope doctor --help' for the config keys, or drop --config\n")
        return EXIT_USAGE
    try:
        return _run(args, exporter, worker, host, port)
    finally:
        if exporter.flows is not None:
            exporter.flows.close()  # detach now (the kernel would at exit anyway)


def _run(args: argparse.Namespace, exporter: Exporter, worker: ProcessChecks | None, host: str, port: int) -> int:
    err = sys.stderr
    if args.once:
        return _once(exporter, args.json)

    def log(line: str) -> None:
        print(line, file=err, flush=True)

    try:
        server = server_class(host)((host, port), make_handler(exporter, args.timeout, log))
    except OSError as exc:
        err.write(f"error: cannot listen on {args.listen}: {exc.strerror or exc}\n")
        err.write("  hint: is another exporter already running there? pick another port with --listen\n")
        return EXIT_SOURCE
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}/metrics"
    if args.json:
        print(json.dumps({"event": "listening", "url": url}), flush=True)
    else:
        log(f"vifscope exporter: serving {url} (libvirt {exporter.snapshotter.uri})")
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop a foreground exporter
    finally:
        server.server_close()
        if worker is not None:
            worker.close()
    return EXIT_OK
