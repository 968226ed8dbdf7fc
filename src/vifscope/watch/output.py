"""What ``watch`` prints: one line per event, as text or (``--json``) as a JSON object.

Every line is built as a dict first (``*_doc`` functions, pure); the text form is derived
from the same dict so both outputs always say the same thing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from vifscope.model import VifBinding, VifStatus
from vifscope.report import documents as report
from vifscope.watch.flows import flows_text
from vifscope.watch.state import Transition

ARROW = "→"


def _status(b: VifBinding | None, missing: str) -> str:
    return b.status.value if b else missing


def transition_doc(t: Transition) -> dict[str, Any]:
    """One transition; ``vif`` is the new binding in the ``status --json`` shape."""
    v = t.vif
    old, new = t.old, t.new
    return {
        "event": "transition",
        "at": t.at.isoformat(),
        "cause": t.cause,
        "domain": v.domain,
        "domain_uuid": v.domain_uuid,
        "index": v.index,
        "mac": v.mac,
        "target": v.target,
        "from": old.status.value if old else None,
        "to": new.status.value if new else None,
        "master_from": old.actual_bridge if old else None,
        "master_to": new.actual_bridge if new else None,
        "problems_from": [p.value for p in old.problems] if old else [],
        "problems": [p.value for p in new.problems] if new else [],
        "detail": new.detail if new else "no longer declared",
        "vif": report.binding_dict(new) if new else None,
    }


def _pair(what: str, old: object, new: object) -> str:
    return f"{what} {old or 'none'} {ARROW} {new or 'none'}"


def _changes(doc: dict[str, Any], old: VifBinding, new: VifBinding) -> list[str]:
    """What moved between two sides of a transition, most telling first."""
    parts: list[str] = []
    if old.vif.target != new.vif.target:
        parts.append(_pair("tap", old.vif.target, new.vif.target))
    if old.vif.domain_state != new.vif.domain_state:
        parts.append(_pair("domain", old.vif.domain_state.value, new.vif.domain_state.value))
    if old.vif.link_state != new.vif.link_state:
        parts.append(_pair("link state", old.vif.link_state, new.vif.link_state))
    inactive = VifStatus.INACTIVE in (old.status, new.status)  # no taps: where they sat is no news
    if doc["master_from"] != doc["master_to"] and not inactive:
        parts.append(_pair("master", doc["master_from"], doc["master_to"]))
    elif old.status == new.status and doc["problems_from"] != doc["problems"]:
        parts.append(_pair("problems", ",".join(doc["problems_from"]), ",".join(doc["problems"])))
    return parts


def transition_text(t: Transition) -> str:
    """``web1 52:54:00:.. vnet3 bound → detached (master br0 → none)``."""
    doc = transition_doc(t)
    head = f"{doc['domain']} {doc['mac'] or '#' + str(doc['index'])} {doc['target'] or '-'}"
    line = f"{head} {_status(t.old, '(new)')} {ARROW} {_status(t.new, '(gone)')}"
    parts = _changes(doc, t.old, t.new) if t.old and t.new else []
    line += f" ({'; '.join(parts)})" if parts else ""
    if t.new and t.new.status not in report.HEALTHY and t.new.detail:
        line += f": {t.new.detail}"
    return line


def _vif_head(doc: dict[str, Any]) -> str:
    return f"{doc.get('domain')} {doc.get('mac') or '-'} {doc.get('target') or '-'}"


def _text_source(d: dict[str, Any]) -> str:
    if d["state"] == "up":
        return f"source {d['source']} up"
    hint = f" (hint: {d['hint']})" if d.get("hint") else ""
    return f"source {d['source']} down: {d['error']}{hint}"


def _text_heal(d: dict[str, Any]) -> str:
    what = "; ".join(d.get("commands") or ()) or "nothing to run"
    err = f": {d['error']}" if d.get("error") else ""
    return f"heal {_vif_head(d)}: {what} {ARROW} {d['result']}{err}"


def _text_limited(d: dict[str, Any]) -> str:
    return f"heal {_vif_head(d)}: rate-limited for {d['for_s']:.0f} s ({d['reason']})"


def _text_skip(d: dict[str, Any]) -> str:
    return f"heal {_vif_head(d)}: not healed ({d['reason']})"


def _text_start(d: dict[str, Any]) -> str:
    heal = "heal off" if not d["heal"] else ("heal on (dry run)" if d["dry_run"] else "heal on")
    return f"watching {d['summary']} on {d['host']} ({d['uri']}); {heal}; resync every {d['resync_interval']:.0f} s"


def _text_reload(d: dict[str, Any]) -> str:
    return "config reloaded" if d["ok"] else f"config reload failed, keeping the old one: {d['error']}"


TEXT: dict[str, Callable[[dict[str, Any]], str]] = {
    "source": _text_source,
    "heal": _text_heal,
    "heal-limited": _text_limited,
    "heal-skipped": _text_skip,
    "start": _text_start,
    "reload": _text_reload,
    "overrun": lambda d: f"link events lost ({d['reason']}, {d['total']} so far): re-reading every link",
    "stop": lambda d: f"stopped ({d['signal']})",
    "flows": lambda d: flows_text(d),
    "qos-heal": lambda d: f"qos {d.get('domain', '')} {d.get('mac', '')}: {d['status']} (was {d.get('was', '?')})",
}


class Printer:
    """Writes events to a stream, flushed per line (a pipe reader sees them at once)."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def transition(self, t: Transition) -> None:
        if self.as_json:
            self._write(json.dumps(transition_doc(t), ensure_ascii=False))
        else:
            self._write(f"{_clock(t.at)} {transition_text(t)}")

    def event(self, doc: dict[str, Any]) -> None:
        """A non-transition event; only the kinds in TEXT have a text form."""
        at = datetime.now(UTC)
        if self.as_json:
            self._write(json.dumps({"event": doc["event"], "at": at.isoformat(), **doc}, ensure_ascii=False))
        elif doc["event"] in TEXT:
            self._write(f"{_clock(at)} {TEXT[doc['event']](doc)}")


def _clock(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S.%f")[:-3]
