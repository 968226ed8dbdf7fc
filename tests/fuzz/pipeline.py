"""The whole path a host's input takes: a golden-checks case with one raw input mutated ->
the real parsers (the golden loader) -> snapshot -> bind -> checks -> every report, each
report's output checked for validity.

A case is flattened once into a worker's directory (its base and patches resolved, so the
loader reads exactly what it would have); each input rewrites one file there and restores it.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from tests.fuzz.mutate import mutate_json, mutate_json_lines, mutate_lines, mutate_xml
from tests.fuzz.targets import TARGETS, Target
from tests.golden_checks.loader import CASES_DIR, Files, load_case
from vifscope.bind.join import bind
from vifscope.checks import DoctorConfig, evaluate
from vifscope.exporter.checks import doctor_checks
from vifscope.exporter.collector import Scrape, render
from vifscope.model import HostSnapshot, VifStatus
from vifscope.report.doctor_tables import print_doctor
from vifscope.report.documents import status_report
from vifscope.report.findings import doctor_report
from vifscope.report.graph import graph_document, render_dot, render_mermaid
from vifscope.report.tables import vif_table
from vifscope.report.topology import build_topology
from vifscope.sources.libvirt.netxml import parse_network_xml

BY_NAME = {t.name: t for t in TARGETS}
# Which raw file of a case each parser reads, and how it is mutated as text.
KINDS: tuple[tuple[str, str], ...] = (
    ("domains/*.xml", "domain-xml"),
    ("networks/*.xml", "network-xml"),
    ("facts/nwfilters/*.xml", "nwfilter-xml"),
    ("facts/nwfilter-bindings/*.xml", "nwfilter-binding-xml"),
    ("links.json", "links-json"),
    ("ovs.json", "ovsdb-json"),
    ("facts/tc.json", "tc-json"),
    ("facts/neigh.json", "neigh-json"),
    ("facts/addr.json", "addr-json"),
    ("facts/nft.json", "nft-json"),
    ("facts/iptables-legacy.txt", "iptables-save"),
)
MERMAID_LINE = re.compile(
    r'  n\d+(\{\{|\(\[|\[\(|\[/|\[\[|\[|\()"[^"\n]*"(\}\}|\]\)|\)\]|\\\]|\]\]|\]|\))'
    r'|  n\d+ (-->|-\.->|==>)(\|"[^"\n]*"\|)? n\d+'
    r"|  classDef st_\S+ fill:#[0-9a-f]{6},stroke:#333"
    r"|  class n\d+(,n\d+)* st_\S+"
)


def _kind(rel: str) -> str | None:
    return next((name for pattern, name in KINDS if Path(rel).match(pattern)), None)


def flatten(case: Path) -> dict[str, str]:
    """Every file the loader reads of ``case``, base and patches resolved, as text."""
    meta = json.loads((case / "case.json").read_text())
    files = Files(case, CASES_DIR / meta["base"] if meta.get("base") else None, meta.get("patch", {}))
    own_meta = {k: v for k, v in meta.items() if k not in ("base", "patch")}
    out = {"case.json": json.dumps(own_meta), "expected.json": "[]"}
    for rel in ("domains.json", "networks.json", "links.json", *(f"facts/{n}.json" for n in FACT_JSON)):
        doc = files.json(rel)
        if doc is not None:
            out[rel] = json.dumps(doc)
    for entry in json.loads(out["domains.json"]):
        out[f"domains/{entry['file']}"] = files.text(f"domains/{entry['file']}")
    for entry in json.loads(out.get("networks.json", "[]")):
        out[f"networks/{entry['file']}"] = files.text(f"networks/{entry['file']}")
    for rel in ("ovs.json", "facts/iptables-legacy.txt", "facts/kconfig.txt", "facts/tc-shaping.txt"):
        if (found := files.find(rel)) is not None:
            out[rel] = found.read_text()
    # vhost-user / SR-IOV facts: the loader replays only the case's own (no base), as files.
    for p in sorted((case / "backends").rglob("*")) if (case / "backends").is_dir() else ():
        if p.is_file():
            out[str(p.relative_to(case))] = p.read_text()
    for rel in ("facts/nwfilters", "facts/nwfilter-bindings"):
        for p in sorted(found.glob("*.xml")) if (found := files.find(rel)) else ():
            out[f"{rel}/{p.name}"] = p.read_text()
    if files.find("facts") is not None:
        out.setdefault("facts/.keep", "")
    return out


FACT_JSON = ("addr", "agent", "devices", "leases", "neigh", "nft", "runtime", "sysctl", "tc")


def mutate_text(rng: random.Random, kind: str, text: str) -> str:
    """One mutation of a raw file, as the mutator of its parser's target does it."""
    if kind.endswith("-xml"):
        return mutate_xml(rng, text)
    if kind == "ovsdb-json":
        return mutate_json_lines(rng, text)
    if kind == "iptables-save":
        return mutate_lines(rng, text)
    return json.dumps(mutate_json(rng, json.loads(text)))


@dataclass
class Outcome:
    kind: str  # which parser's input was mutated
    result: str  # "ok" | "rejected" (a documented error) | "skipped" (the loader cannot carry it)
    dot: str = ""


def _parse_alone(target: Target, kind: str, text: str) -> Any:
    return target.run(text if kind.endswith("-xml") or kind in ("ovsdb-json", "iptables-save") else json.loads(text))


class Worker:
    """One flattened case in a directory of its own."""

    def __init__(self, case: Path, root: Path) -> None:
        self.files = flatten(case)
        self.dir = root / case.name
        shutil.rmtree(self.dir, ignore_errors=True)
        for rel, text in self.files.items():
            (self.dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.dir / rel).write_text(text, encoding="utf-8")
        self.mutable = sorted(rel for rel in self.files if _kind(rel))

    @contextmanager
    def replaced(self, rel: str, text: str) -> Iterator[None]:
        path = self.dir / rel
        path.write_text(text, encoding="utf-8")
        try:
            yield
        finally:
            path.write_text(self.files[rel], encoding="utf-8")

    def one(self, rng: random.Random) -> Outcome:
        kind = rng.choice(sorted({str(_kind(r)) for r in self.mutable}))  # each parser alike, not each file
        rel = rng.choice([r for r in self.mutable if _kind(r) == kind])
        try:
            text = mutate_text(rng, kind, self.files[rel])
        except RecursionError:
            return Outcome(kind, "skipped")  # json cannot write it: nor could a command print it
        try:
            _parse_alone(BY_NAME[kind], kind, text)
        except BY_NAME[kind].allowed:
            return Outcome(kind, "rejected")
        except (RecursionError, UnicodeEncodeError):
            return Outcome(kind, "skipped")  # json cannot carry it (too deep, lone surrogate): nor can the loader
        if not text.isascii() and not _utf8(text):
            return Outcome(kind, "skipped")  # a lone surrogate: no file, so no loader, can hold it
        if kind == "network-xml" and _net_name(text) != _net_name(self.files[rel]):
            return Outcome(kind, "skipped")  # the loader looks runtime facts up by network name
        with self.replaced(rel, text):
            snap = load_case(self.dir).snap
        return Outcome(kind, "ok", every_report(snap))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _net_name(text: str) -> str:
    return parse_network_xml(text, active=True, autostart=None).name


def _console() -> Console:
    return Console(file=io.StringIO(), width=200, force_terminal=False)


def every_report(snap: HostSnapshot) -> str:
    """Run every report on ``snap`` and check what it printed; AssertionError names a broken
    property. Returns the DOT text, for a caller to hand to Graphviz now and then."""
    bindings = bind(snap)
    assert sorted(id(b.vif) for b in bindings) == sorted(map(id, snap.vifs)), "every vif exactly one verdict"
    assert all(isinstance(b.status, VifStatus) for b in bindings)
    run = evaluate(snap, bindings, DoctorConfig())
    status = json.loads(json.dumps(status_report(snap, bindings), ensure_ascii=False))
    _console().print(vif_table(status["vifs"]))
    doctor = json.loads(json.dumps(doctor_report(snap, run, bindings), ensure_ascii=False))
    print_doctor(_console(), doctor)
    topo = build_topology(snap, bindings)
    json.loads(json.dumps(graph_document(snap, bindings, topo), ensure_ascii=False))
    mermaid = render_mermaid(topo).splitlines()
    bad = [line for line in mermaid[1:] if not MERMAID_LINE.fullmatch(line)]
    assert mermaid[0] == "flowchart LR" and not bad, f"mermaid lines broken: {bad[:3]}"
    findings, known = doctor_checks(DoctorConfig())(snap, bindings)
    text = render(Scrape(snapshot=snap, bindings=bindings, findings=findings, known_checks=known)).decode()
    samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]
    vif_series = [s for s in samples if s.name == "vifscope_vif_bound"]
    assert len(vif_series) == len(bindings), "one vifscope_vif_bound series per vif"
    return render_dot(topo)


def cases() -> list[Path]:
    return sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
