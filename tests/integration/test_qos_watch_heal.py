"""``watch --heal`` and vifscope's own QoS objects, on real links in this test's namespaces: the
lab of vifscope.lab.qoslink (namespace ``A`` plays the host, a veth end the tap, a libvirt
test-driver node file the running domain). ``qos set`` gives the vif a tc-backend outbound cap
(an ifb device, ``vsq-<ifindex>``) and a DSCP mark (a chain in ``A``'s own nft table
``netdev vifscope_qos`` -- never the host's); then ``vifscope watch --heal`` runs inside ``A``.

* the tap deleted (what a domain stop or a detach does to it): watch removes the ifb and the
  mark's chain -- on this kernel the chain would otherwise outlive the tap and mark the next
  device of that name;
* the tap plugged again (a restart): the outbound cap and the mark are rebuilt, and the guest's
  packets go through the new chain (its counter, read in ``A``; on the vif without the ifb: a
  redirected tap's packets never reach the chain, see doctor's qos.mark_bypassed);
* deleted and re-created at once (one link dump may see only the new ifindex): same end state,
  and the old ifb is gone.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vifscope.lab.qoslink import Pair, QosLink

pytestmark = pytest.mark.integration

PREFIX = os.environ.get("VIFSCOPE_TEST_LAB_PREFIX", "vs-r-") + "h"
NET = os.environ.get("VIFSCOPE_TEST_LAB_NET", "10.90")
Event = dict[str, Any]


class Watch:
    """``vifscope watch --heal --json`` inside ``A``; its lines in a queue."""

    def __init__(self, lab: QosLink, uri: str, audit: str) -> None:
        argv = ["ip", "netns", "exec", lab.ns_a, sys.executable, "-m", "vifscope", "-c", uri, "watch", "--heal",
                "--json", "--audit-log", audit]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.seen: list[Event] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait(self, match: Callable[[Event], bool], timeout: float = 15.0) -> Event:
        while True:
            try:
                ev = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no such watch line in {timeout} s; seen {self.seen[-6:]}") from None
            if ev is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"watch exited ({self.proc.wait()}): {err}")
            self.seen.append(ev)
            if match(ev):
                return ev

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def in_a(lab: QosLink, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", lab.ns_a, *argv], capture_output=True, text=True, check=False).stdout


def ifbs(lab: QosLink) -> set[str]:
    return set(re.findall(r"^\d+: (vsq-\d+)", in_a(lab, "ip", "-o", "link", "show", "type", "ifb"), re.M))


def ifindex(lab: QosLink, dev: str) -> int:
    return int(in_a(lab, "cat", f"/sys/class/net/{dev}/ifindex").strip())


def marks(lab: QosLink) -> str:
    """``A``'s vifscope_qos table ("" when there is none)."""
    return in_a(lab, "nft", "list", "table", "netdev", "vifscope_qos")


def ping_counted(lab: QosLink, x: Pair) -> int:
    """IPv4 packets ``x``'s mark chain counted after three pings from the guest side."""
    subprocess.run(["ip", "netns", "exec", lab.ns_b, "ping", "-c", "3", "-i", "0.2", "-W", "1", x.host_ip],
                   capture_output=True, check=False)  # fmt: skip
    chain = re.search(rf'device "{re.escape(x.tap)}".*?ip dscp set ef counter packets (\d+)', marks(lab), re.S)
    return int(chain.group(1)) if chain else -1


@pytest.fixture
def marked(tmp_path: Path) -> Iterator[tuple[QosLink, Watch, Path]]:
    """Two vifs marked EF, the first also shaped (outbound 500 kB/s, tc backend: an ifb), watch
    --heal running. The second is there for the packets: on the first the ifb redirect keeps them
    from the mark's chain (doctor's qos.mark_bypassed)."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    audit = tmp_path / "audit.jsonl"
    with QosLink(PREFIX, NET, 2, tmp_path) as lab:
        uri = lab.write_node()
        shaped, plain = lab.pairs
        docs = []
        for x, args in ((shaped, ("--backend", "tc", "--outbound", "500")), (shaped, ("--dscp", "ef")),
                        (plain, ("--dscp", "ef"))):  # fmt: skip
            done = lab.vifscope(uri, "qos", "set", x.domain, "--mac", x.mac, *args, "--audit-log", str(audit), "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            docs.append(json.loads(done.stdout))
        assert "qos.mark_bypassed" in docs[1]["warnings"][0]  # the mark on the redirected tap
        assert "warnings" not in docs[0] and "warnings" not in docs[2]
        uri = lab.remember(*docs)
        assert ifbs(lab) == {f"vsq-{ifindex(lab, shaped.tap)}"}
        assert all(f'device "{x.tap}"' in marks(lab) for x in lab.pairs)
        watch = Watch(lab, uri, str(audit))
        try:
            watch.wait(lambda e: e["event"] == "start")
            yield lab, watch, audit
        finally:
            watch.stop()


def _of(event: str, **fields: str) -> Callable[[Event], bool]:
    return lambda e: e["event"] == event and all(e.get(k) == v for k, v in fields.items())


def test_gone_taps_lose_their_ifb_and_chains_and_new_ones_get_rates_and_marks(
    marked: tuple[QosLink, Watch, Path],
) -> None:
    lab, watch, audit = marked
    shaped, plain = lab.pairs
    old_ifb = f"vsq-{ifindex(lab, shaped.tap)}"
    for x in lab.pairs:
        subprocess.run(["ip", "-n", lab.ns_a, "link", "del", x.tap], check=True)
    ifb = watch.wait(_of("qos-release", object="ifb"))
    assert (ifb["device"], ifb["status"], ifb["domain"]) == (old_ifb, "removed", shaped.domain)
    for x in lab.pairs:
        chain = watch.wait(_of("qos-release", object="mark", domain=x.domain))
        assert chain["status"] == "removed"
    assert ifbs(lab) == set() and marks(lab) == ""  # nothing of ours is left in the kernel

    for x in lab.pairs:
        lab._plug(x)  # the domains' restart: the same names, new ifindexes, no qdisc, no chain
    rates = watch.wait(_of("qos-heal"))
    assert (rates["domain"], rates["was"], rates["status"]) == (shaped.domain, "missing", "enforced")
    for x in lab.pairs:
        mark = watch.wait(_of("qos-mark-heal", domain=x.domain))
        assert (mark["was"], mark["status"], mark["declared"]) == ("missing", "enforced", 46)
    assert ifbs(lab) == {f"vsq-{ifindex(lab, shaped.tap)}"} != {old_ifb}
    assert "mirred" in in_a(lab, "tc", "filter", "show", "dev", shaped.tap, "ingress")
    assert all(f'device "{x.tap}"' in marks(lab) for x in lab.pairs)
    assert ping_counted(lab, plain) >= 3  # the guest's packets pass the new chain
    logged = [(r["action"], r["phase"], r["result"]) for r in map(json.loads, audit.read_text().splitlines())]
    assert ("qos-ifb", "release", "ok") in logged and ("qos-dscp", "release", "ok") in logged
    assert ("qos-dscp", "heal", "ok") in logged


def test_a_tap_recreated_at_once_ends_with_one_new_ifb_and_its_mark(marked: tuple[QosLink, Watch, Path]) -> None:
    lab, watch, _audit = marked
    shaped, _plain = lab.pairs
    old_ifb = f"vsq-{ifindex(lab, shaped.tap)}"
    lab.recreate(shaped)  # deleted and plugged again within one command's time
    watch.wait(_of("qos-heal", status="enforced"))  # printed once the whole update's QoS work is done
    lines = [e for e in watch.seen if e["event"].startswith("qos-")]
    assert ifbs(lab) == {f"vsq-{ifindex(lab, shaped.tap)}"} and old_ifb not in ifbs(lab), lines
    table = marks(lab)
    assert f'device "{shaped.tap}"' in table and len(re.findall(r"ip6? dscp set ef", table)) == 4


def test_qos_reapply_sets_a_lost_mark_again(tmp_path: Path) -> None:
    """Without watch: the table flushed behind vifscope's back, ``qos reapply`` puts the mark back."""
    if os.geteuid() != 0:
        pytest.fail("integration tests need root (network namespaces)")
    audit = str(tmp_path / "audit.jsonl")
    with QosLink(PREFIX + "r", NET, 1, tmp_path) as lab:
        (x,) = lab.pairs
        uri = lab.write_node()
        done = lab.vifscope(
            uri, "qos", "set", x.domain, "--mac", x.mac, "--dscp", "af41", "--audit-log", audit, "--json"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        uri = lab.remember(json.loads(done.stdout))
        in_a(lab, "nft", "delete", "table", "netdev", "vifscope_qos")
        assert marks(lab) == ""
        again = lab.vifscope(uri, "qos", "reapply", "--audit-log", audit, "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        (one,) = json.loads(again.stdout)["remarked"]
        assert (one["domain"], one["was"], one["status"], one["declared"]) == (x.domain, "missing", "enforced", 34)
        assert f'device "{x.tap}"' in marks(lab) and "ip dscp set af41" in marks(lab)
        quiet = lab.vifscope(uri, "qos", "reapply", "--audit-log", audit, "--json")
        assert json.loads(quiet.stdout)["remarked"] == []  # in force: nothing to do
