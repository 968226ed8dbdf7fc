"""A real ``vifscope serve`` process on a free loopback port, and HTTP helpers for the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "vs-g-0123456789abcdef0123456789"


@dataclass
class Server:
    url: str  # ends with /
    audit_log: Path
    proc: subprocess.Popen[str]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> Any:
        return json.loads(self.body)


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def post(url: str, doc: dict[str, Any] | None, token: str | None = TOKEN) -> Answer:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return call(url, "POST", json.dumps(doc).encode() if doc is not None else None, headers)


@contextmanager
def serve(tmp: Path, *args: str, token: bool = True) -> Iterator[Server]:
    """Start ``vifscope serve``; stop it with SIGTERM at the end and insist it exits cleanly."""
    audit = tmp / "actions.jsonl"
    cmd = [sys.executable, "-m", "vifscope", *args, "serve", "--json", "--listen", "127.0.0.1:0"]
    cmd += ["--audit-log", str(audit), "--interval", "0.5"]
    if token:
        token_file = tmp / "token"
        token_file.write_text(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        cmd += ["--token-file", str(token_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"serve did not start: {proc.stderr.read() if proc.stderr else ''}"
        yield Server(json.loads(line)["url"], audit, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError("serve did not stop within 15 s of SIGTERM") from None
        assert rc == 0, f"serve exited {rc}: {proc.stderr.read() if proc.stderr else ''}"
