"""``vifscope check-xml FILE…``: check the NICs of domain XML files that are not defined yet
against this host (a pre-commit or CI step before ``virsh define``). Reads; changes nothing.

Exit codes, as doctor's: 0 no error finding (warnings and info alone: 0), 1 an error finding,
2 usage (a file missing, not XML, not a ``<domain>``), 3 a source the answer needs is
unavailable (libvirt, the link dump; OVSDB for a file that declares OVS; a configured MAC
store that cannot be read).
"""

from __future__ import annotations

import argparse
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vifscope.checks.macs import StoreView
from vifscope.checks.xmlbase import CHECK_IDS, HostView, XmlDomain, XmlInterface
from vifscope.checks.xmlcheck import check_domain
from vifscope.cli.common import emit_json, fatal_source, make_console
from vifscope.model import DeclaredVif, DomainState, Finding, HostSnapshot, SourceError
from vifscope.report import documents as report
from vifscope.report.findings import doctor_exit_code, finding_dict, severity_counts
from vifscope.sources.kernel.kconfig import read_shaping
from vifscope.sources.libvirt.domxml import DomainXmlError, parse_domain
from vifscope.sources.libvirt.xmlroot import xml_root

if TYPE_CHECKING:
    from rich.console import Console

STORE_HINT = "is the database reachable? (--db URL, $VIFSCOPE_DB or the store url in vifscope.toml)"


class UsageError(ValueError):
    """A file that cannot be checked: exit 2 with one line and a hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "check-xml",
        help="check a domain XML's NICs against this host before 'virsh define'",
        epilog="exit codes: 0 no error, 1 an error finding, 2 usage, 3 a needed source is unavailable",
    )
    common(p)
    # "*", not "+": with no FILE the command still parses (``check-xml -c URI`` like every
    # command) and says what is missing in its own one line and hint, exit 2.
    p.add_argument("files", nargs="*", metavar="FILE", help="domain XML files (as given to virsh define)")
    p.add_argument("--db", metavar="URL", help="MAC store URL (default: $VIFSCOPE_DB, [store] url, or SQLite)")
    p.set_defaults(func=run_check_xml)


def _interface(iface: ET.Element, index: int) -> XmlInterface:
    bw = iface.find("bandwidth")
    target = iface.find("target")
    return XmlInterface(
        index=index,
        inbound=bw is not None and bw.find("inbound") is not None,
        outbound=bw is not None and bw.find("outbound") is not None,
        target_managed=target is None or target.get("managed") != "no",
    )


def parse_file(path: str, text: str) -> XmlDomain:
    """The file's domain as check-xml reads it (UsageError when it is not a domain document)."""
    try:
        parsed = parse_domain(text, DomainState.SHUTOFF, extras=False)
        root = xml_root(text, "domain", DomainXmlError)
    except DomainXmlError as exc:
        raise UsageError(f"{path}: {exc}", "give the XML of one <domain>, as 'virsh dumpxml' prints it") from exc
    devices = root.find("devices")
    ifaces = devices.findall("interface") if devices is not None else []
    interfaces = tuple(_interface(x, i) for i, x in enumerate(ifaces))
    return XmlDomain(path, parsed.name, parsed.uuid, parsed.vifs, interfaces)


def read_file(path: str) -> XmlDomain:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file", "check the path (a shell glob that matched nothing?)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}", "give a readable UTF-8 domain XML file") from exc
    return parse_file(path, text)


@dataclass(frozen=True)
class StoreRead:
    """The store as check-xml read it: its view (None: no store), the error, the URL (no password)."""

    view: StoreView | None
    error: SourceError | None = None
    url: str | None = None


def configured_store_url(db: str | None) -> str | None:
    """The store's URL, or None when none is configured and the embedded file was never made
    (most hosts): decided without importing SQLAlchemy, ~185 ms of a check that takes ~0.25 s."""
    from vifscope.store.url import DEFAULT_DB, load_store_config, resolve_url

    url = resolve_url(db, os.environ, load_store_config())
    return None if url == f"sqlite:///{DEFAULT_DB}" and not DEFAULT_DB.exists() else url


def read_store(db: str | None, host: str) -> StoreRead:
    """The MAC store's records and pools; no store (the embedded file never created) is no view."""
    from vifscope.store.url import StoreConfigError

    try:
        url = configured_store_url(db)
    except StoreConfigError as exc:
        return StoreRead(None, SourceError("store", str(exc), "fix the store table of vifscope.toml"))
    return StoreRead(None) if url is None else _read_store(url, host)


def _read_store(url: str, host: str) -> StoreRead:
    from sqlalchemy.exc import SQLAlchemyError

    from vifscope.store.engine import StoreError, open_store, sqlite_missing
    from vifscope.store.url import redacted

    try:
        if sqlite_missing(url):
            return StoreRead(None)
        from vifscope.store.alloc import records
        from vifscope.store.pools import load_pools

        engine = open_store(url)
        with engine.connect() as conn:
            pools = load_pools(conn)
        return StoreRead(StoreView(records(engine), pools, host, time.time()), url=redacted(url))
    except StoreError as exc:
        return StoreRead(None, SourceError("store", str(exc), exc.hint or STORE_HINT))
    except SQLAlchemyError as exc:  # not a database, a bad URL, a query that failed: the store cannot answer
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return StoreRead(None, SourceError("store", f"store error: {first}", STORE_HINT))


def file_dict(dom: XmlDomain, findings: Sequence[Finding]) -> dict[str, Any]:
    rows = []
    for f in findings:
        row = finding_dict(f)
        row["title"] = row["title"] or CHECK_IDS.get(f.check, ("", ""))[0] or None
        rows.append(row)
    return {"file": dom.file, "domain": dom.name, "findings": rows}


def _needs(snap: HostSnapshot, v: DeclaredVif) -> tuple[str, ...]:
    """The optional sources this vif's answer needs: OVSDB when it declares OVS or names a
    bridge no kernel link has (an OVS netdev bridge has none); the networks for type network."""
    named = v.type == "bridge" and v.source is not None and v.source not in snap.links_by_name
    ovs = ("ovs",) if v.virtualport == "openvswitch" or named else ()
    return ovs + (("libvirt-network",) if v.type == "network" else ())


def exit_code(snap: HostSnapshot, doms: Sequence[XmlDomain], found: Sequence[Finding], store: StoreRead) -> int:
    """doctor's code; 3 also when a source a file's vif needs failed (OVSDB, the networks), or
    the configured store."""
    needed = {s for d in doms for v in d.vifs for s in _needs(snap, v)}
    if store.error is not None or any(snap.failed(s) for s in needed):
        return report.EXIT_SOURCE
    return doctor_exit_code(snap, (), found)


def check_files(doms: Sequence[XmlDomain], host: HostView, store: StoreRead) -> tuple[dict[str, Any], int]:
    """The ``--json`` document and the exit code."""
    snap = host.snap
    results = [(d, check_domain(d, host)) for d in doms]
    found = [f for _, fs in results for f in fs]
    errors = [*snap.errors, *([store.error] if store.error else [])]
    doc = {
        "host": snap.host,
        "uri": snap.uri,
        "taken_at": snap.taken_at.isoformat(),
        "files": [file_dict(d, fs) for d, fs in results],
        "summary": severity_counts(found),
        "bandwidth_checked": host.shaping is not None,
        "store": store.url,
        "source_errors": report.errors_list(errors),
    }
    return doc, exit_code(snap, doms, found, store)


def _usage(args: argparse.Namespace, exc: UsageError) -> int:
    if args.json:
        emit_json({"error": str(exc), "hint": exc.hint, "exit": report.EXIT_USAGE})
        return report.EXIT_USAGE
    err = make_console(stderr=True)
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    err.print(f"  hint: {exc.hint}", highlight=False)
    return report.EXIT_USAGE


def _human(console: Console, doc: dict[str, Any]) -> None:
    from vifscope.report.doctor_tables import findings_tables

    for f in doc["files"]:
        n = len(f["findings"])
        count = f"{n} finding(s)" if n else "no findings"
        console.print(f"{f['file']}: domain {f['domain']}: {count}", highlight=False, markup=False)
        for table in findings_tables(f["findings"]):
            console.print(table)
    s = doc["summary"]
    files = len(doc["files"])
    line = f"check-xml: {files} file(s), {s['error']} error(s), {s['warning']} warning(s), {s['info']} info"
    console.print(line, highlight=False)
    if not doc["bandwidth_checked"]:
        console.print("note: /proc/config.gz is absent: <bandwidth> support was not checked", highlight=False)


def run_check_xml(args: argparse.Namespace) -> int:
    from vifscope.sources.libvirt.conn import resolve_uri
    from vifscope.sources.snapshot import take_snapshot

    try:
        if not args.files:
            raise UsageError("check-xml needs at least one FILE", "vifscope check-xml domain.xml [more.xml ...]")
        doms = [read_file(path) for path in args.files]
    except UsageError as exc:
        return _usage(args, exc)
    snap = take_snapshot(resolve_uri(args.connect))
    store = read_store(args.db, snap.host)
    doc, code = check_files(doms, HostView(snap, store.view, read_shaping()), store)
    if args.json:
        emit_json(doc)
        return code
    from vifscope.report.tables import print_errors

    err = make_console(stderr=True)
    if not fatal_source(err, doc):
        print_errors(err, doc["source_errors"])
        _human(make_console(), doc)
    return code
