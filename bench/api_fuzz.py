"""The API at depth (``make api-fuzz``): schemathesis against a real ``vifscope serve``, with
negative data and the stateful phase following the spec's OpenAPI links, on a host whose
names are hostile (tests/integration/hostile_host.py: a private netns with real bridges and
held taps, libvirt's test driver with domain names holding quotes, ``$(…)``, backticks,
markup and unicode). The server and schemathesis both run inside that namespace, so a fix or
heal the fuzzer triggers changes only that namespace's links.

Two runs: with the bearer token (every operation exercised; POSTs really plan, apply, verify
and roll back) and without it (every POST must be refused: 401, or 413 for a body over the
limit before anything is read). Every request and answer is read back from schemathesis' HAR
report: counts per status, 5xx (must be 0), and the check failures schemathesis reports
(must be 0). The server runs with ``--access-log``: its whole output and the audit log are
searched for the token afterwards (must not appear). Figures go to RELIABILITY.md
(``rel:api``); ``--quick`` is the slice tests/integration/test_api_hostile.py runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from benchlib import write_section  # noqa: E402

from tests.integration.hostile_host import HostileHost, hostile_host  # noqa: E402

RELIABILITY = ROOT / "RELIABILITY.md"
TOKEN = "vs-h-" + "5a17" * 8
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = ROOT / "bench" / "schemathesis.toml"  # why two checks are narrowed on some operations
DOCUMENTED_503 = ("/healthz", "/api/v1/vifs/")  # a source down or late: the documented answer
PHASES = "examples,coverage,fuzzing,stateful"
# The live feed never ends by design (an SSE stream): schemathesis would wait on it forever.
EXCLUDE_PATHS = ("/api/v1/events",)
MUTATIONS = ("/fix", "/heal", "/link")


@dataclass
class Run:
    name: str
    examples: int
    seconds: float = 0.0
    returncode: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    refused_posts: int = 0
    degraded: int = 0  # documented 503s: a source was down or late
    unrefused_posts: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # schemathesis' own check failures

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def start_server(host: HostileHost, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """serve with the token configured (the no-token run is a client that does not send it)."""
    argv = host.vifscope_argv("serve", "--json", "--listen", "127.0.0.1:0", "--access-log")
    argv += ["--audit-log", str(host.dir / "actions.jsonl"), "--interval", "0.5"]
    token = host.dir / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    argv += ["--token-file", str(token)]
    out = log.open("ab")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=out, cwd=host.dir, env=host.env())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"serve did not start: {log.read_text()[-2000:]}")
    return proc, json.loads(line)["url"]


def schemathesis(host: HostileHost, url: str, run: Run, report: Path, seed: int, max_time: int) -> str:
    argv = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}openapi.json",
        "--no-color",
        "--mode",
        "all",
        "--phases",
        PHASES,
    ]
    argv += ["-n", str(run.examples), "--seed", str(seed), "--workers", "1"]
    argv += ["--request-timeout", "60", "--max-time", str(max_time), "--generation-database", "none"]
    argv += ["--report", "har", "--report-har-path", str(report), "--continue-on-failure"]
    for path in EXCLUDE_PATHS:
        argv += ["--exclude-path", path]
    if run.name == "token":
        argv += ["-H", f"Authorization: Bearer {TOKEN}"]
    started = time.monotonic()
    ran = host.run(*argv, timeout=max_time + 600)
    run.seconds, run.returncode = time.monotonic() - started, ran.rc
    return ran.out + ran.err


def read_har(run: Run, report: Path) -> None:
    entries = json.loads(report.read_text())["log"]["entries"] if report.exists() else []
    for e in entries:
        method, path = e["request"]["method"], "/" + e["request"]["url"].split("/", 3)[-1].split("?")[0]
        status = int(e["response"]["status"])
        run.statuses[status] += 1
        run.by_operation[f"{method} {_template(path)}"] += 1
        if status == 503 and path.startswith(DOCUMENTED_503):
            run.degraded += 1
        elif status >= 500:
            run.server_errors.append(f"{method} {path} -> {status}")
        if run.name == "no-token" and method == "POST" and path.endswith(MUTATIONS):
            if status in (401, 403, 413):
                run.refused_posts += 1
            elif status not in (404, 405):  # a path that routes nowhere never reaches a handler
                run.unrefused_posts.append(f"{method} {path} -> {status}")


def _template(path: str) -> str:
    parts = path.split("/")
    if path.startswith("/api/v1/vifs/") and len(parts) > 4:
        parts[4] = "{domain}"
        if len(parts) > 5:
            parts[5] = "{mac}"
    return "/".join(parts)


def failures_of(output: str) -> list[str]:
    """schemathesis' summary of failed checks (its exit code is non-zero when there are any)."""
    keep = ("FAILURES", "_____", "- ", "Failed", "failed")
    return [line.strip() for line in output.splitlines() if line.strip().startswith(keep)][:40]


def one_run(host: HostileHost, name: str, examples: int, seed: int, max_time: int, work: Path) -> tuple[Run, str]:
    run = Run(name, examples)
    log = work / f"serve-{name}.log"
    proc, url = start_server(host, log)
    try:
        output = schemathesis(host, url, run, work / f"{name}.har", seed, max_time)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    read_har(run, work / f"{name}.har")
    if run.returncode != 0:
        run.failures = failures_of(output)
    (work / f"schemathesis-{name}.txt").write_text(output)
    return run, log.read_text(errors="replace")


def token_leaks(host: HostileHost, logs: str) -> int:
    audit = host.dir / "actions.jsonl"
    text = logs + (audit.read_text(errors="replace") if audit.exists() else "")
    return text.count(TOKEN) + text.count(TOKEN[5:])


def report(runs: list[Run], leaks: int, logged: int, args: argparse.Namespace) -> str:
    rows = [
        "| run | examples per operation | requests | 2xx | 4xx | documented 503 | other 5xx | schemathesis failures "
        "| POSTs refused | time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        ok = sum(n for s, n in r.statuses.items() if s < 300)
        client = sum(n for s, n in r.statuses.items() if 400 <= s < 500)
        refused = f"{r.refused_posts:,}" if r.name == "no-token" else "-"
        rows.append(
            f"| {r.name} | {r.examples:,} | {r.requests:,} | {ok:,} | {client:,} | {r.degraded} "
            f"| {len(r.server_errors)} | {len(r.failures)} | {refused} | {r.seconds:.0f} s |"
        )
    statuses = Counter[int]()
    for r in runs:
        statuses.update(r.statuses)
    lines = [
        f"schemathesis {_version()}, mode all (positive and negative data), phases {PHASES}, "
        "every check (two narrowed on some operations: bench/schemathesis.toml), "
        f"seed {args.seed}, at most {args.max_time} s a run (fuzzing and stateful repeat until then), on the "
        "hostile-names host; the server with `--access-log`. Command: `make api-fuzz` (`bench/api_fuzz.py`).",
        "",
        *rows,
        "",
        "Statuses seen: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items())) + ".",
        f"Token occurrences in {logged:,} bytes of server output and audit log: **{leaks}**.",
    ]
    unrefused = [p for r in runs for p in r.unrefused_posts]
    errors = [e for r in runs for e in r.server_errors] + [f for r in runs for f in r.failures]
    lines.append(
        f"POSTs without the token that were not refused: {len(unrefused)}"
        + (f" ({unrefused[:5]})" if unrefused else ".")
    )
    if errors:
        lines += ["", "Failures:", *(f"- `{e}`" for e in errors[:30])]
    return "\n".join(lines)


def _version() -> str:
    out = subprocess.run([SCHEMATHESIS, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().split()[-1] if out.strip() else "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=200, help="examples per operation and phase (default 200)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--max-time", type=int, default=900, help="seconds per run at most (default 900)")
    p.add_argument("--quick", action="store_true", help="10 examples, 45 s a run, no RELIABILITY.md")
    p.add_argument("--no-write", action="store_true", help="print, do not write RELIABILITY.md")
    p.add_argument("--keep", type=Path, help="keep the HAR reports and logs in this directory")
    args = p.parse_args()
    if args.quick:
        args.examples, args.max_time, args.no_write = 10, 45, True
    # SIGTERM (timeout, make): unwind, so the namespace and the server go too
    signal.signal(signal.SIGTERM, lambda _n, _f: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="vs-h-api-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs, logs = [], ""
        with hostile_host(Path(tmp), f"api{os.getpid() % 10000}") as host:
            for name in ("token", "no-token"):
                run, log = one_run(host, name, args.examples, args.seed, args.max_time, work)
                runs.append(run)
                logs += log
                print(f"{name}: {run.requests:,} requests in {run.seconds:.0f} s, rc {run.returncode}", flush=True)
            leaks = token_leaks(host, logs)
            pwned = host.pwned()
        body = report(runs, leaks, len(logs), args)
        print(body)
        print(json.dumps({r.name: dict(r.by_operation) for r in runs}, indent=1))
        if not args.no_write:
            write_section("api", body, path=RELIABILITY, tag="rel")
    bad = any(r.server_errors or r.failures or r.unrefused_posts for r in runs) or leaks or pwned
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
