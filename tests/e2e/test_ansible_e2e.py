"""The Ansible collection (contrib/ansible, vifscope.kvm) driven by a real ``ansible-playbook``
against localhost: check mode changes nothing (``vifscope export`` before and after is equal)
and reports the change with a diff, the first run changes, the second does not, an invalid file
fails the task with vifscope's one-line error, ``vifscope_facts`` returns status/doctor, and
``confirm_within`` leaves the change pending until a following task runs ``apply --commit``.

The file creates a Linux bridge and an isolated network named with the lab prefix; both are
removed afterwards even on failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import vifscope as vifscope_pkg
from tests.e2e.conftest import SPEC, sh, vifscope
from vifscope.lab.host import ensure_libvirtd

pytestmark = pytest.mark.e2e

COLLECTIONS = Path(__file__).resolve().parents[2] / "contrib" / "ansible"
BR = SPEC.name("anbr")
NET = SPEC.name("annet")
NETBR = SPEC.name("annetbr")


def host_file() -> str:
    s = f"{SPEC.net}.61"
    return f"""bridges:
  - {{name: {BR}, kind: linux, stp: false}}
networks:
  - name: {NET}
    mode: isolated
    bridge: {NETBR}
    ipv4: {{address: {s}.1/24, dhcp: [{s}.100, {s}.200]}}
    autostart: false
"""


def _cleanup() -> None:
    for argv in (["virsh", "net-destroy", NET], ["virsh", "net-undefine", NET], ["ip", "link", "del", "dev", BR]):
        subprocess.run(argv, capture_output=True, check=False)


@pytest.fixture
def play(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("the Ansible e2e needs root")
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        pytest.fail("ansible-playbook is not in the venv: make setup-test (ansible-core is a dev extra)")
    ensure_libvirtd(print)
    _cleanup()
    # The modules run "vifscope"; this one is the package under test, in this interpreter.
    wrapper = tmp_path / "vifscope"
    src = Path(vifscope_pkg.__file__).resolve().parents[1]
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={src} exec {sys.executable} -m vifscope "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / "host.yaml").write_text(host_file())
    try:
        yield tmp_path
    finally:
        _cleanup()


def playbook(tmp: Path, tasks: str, *flags: str) -> subprocess.CompletedProcess[str]:
    (tmp / "play.yml").write_text(f"- hosts: localhost\n  gather_facts: false\n  tasks:\n{tasks}")
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-c", "local", "-i", "localhost,", *flags]
    return subprocess.run([*argv, str(tmp / "play.yml")], capture_output=True, text=True, env=env, timeout=300)


def recap(run: subprocess.CompletedProcess[str]) -> dict[str, int]:
    line = re.search(r"^localhost\s*:(.*)$", run.stdout, re.M)
    assert line, run.stdout + run.stderr
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.group(1))}


def apply_task(tmp: Path, path: Path) -> str:
    return (
        "    - vifscope.kvm.vifscope_apply:\n"
        f"        path: {path}\n        vifscope: {tmp / 'vifscope'}\n"
        f"        audit_log: {tmp / 'audit.jsonl'}\n"
    )


def export(tmp: Path) -> str:
    res = vifscope("export", "--names-from", str(tmp / "host.yaml"), "--json")
    assert res.rc == 0, res.err
    return res.out


def test_playbook_check_then_apply_then_idempotent(play: Path) -> None:
    task = apply_task(play, play / "host.yaml")
    before = export(play)

    check = playbook(play, task, "--check", "--diff")
    assert (check.returncode, recap(check)["changed"], recap(check)["failed"]) == (0, 1, 0), check.stdout
    assert f"bridge {BR}: absent" in check.stdout and f"network {NET}" in check.stdout  # the diff
    assert export(play) == before
    assert subprocess.run(["ip", "link", "show", "dev", BR], capture_output=True).returncode != 0

    first = playbook(play, task)
    assert (first.returncode, recap(first)["changed"]) == (0, 1), first.stdout
    assert "Active:         yes" in sh("virsh", "net-info", NET)
    assert export(play) != before

    second = playbook(play, task)
    assert (second.returncode, recap(second)["changed"], recap(second)["failed"]) == (0, 0, 0), second.stdout


def test_invalid_file_fails_with_vifscope_error_and_facts_are_returned(play: Path) -> None:
    bad = play / "bad.yaml"
    bad.write_text(f"bridges:\n  - {{name: {BR}, kind: linux, mtu: ninety}}\n")
    failed = playbook(play, apply_task(play, bad))
    assert (failed.returncode, recap(failed)["failed"]) == (2, 1), failed.stdout
    assert f"{bad}: bridges[0].mtu" in failed.stdout
    assert "Traceback" not in failed.stdout

    facts = playbook(
        play,
        f"    - vifscope.kvm.vifscope_facts:\n        vifscope: {play / 'vifscope'}\n"
        "    - ansible.builtin.assert:\n        that:\n"
        "          - vifscope_status.uri == 'qemu:///system'\n"
        "          - vifscope_doctor.summary.error is defined\n",
    )
    assert (facts.returncode, recap(facts)["failed"], recap(facts)["ok"]) == (0, 0, 2), facts.stdout


def test_confirm_within_then_a_command_task_commits(play: Path) -> None:
    pending = play / "pending"
    tasks = (
        apply_task(play, play / "host.yaml")
        + f"        confirm_within: 120\n        pending_dir: {pending}\n"
        + "      register: applied\n"
        + "    - ansible.builtin.assert:\n        that:\n"
        + "          - applied.result.confirm_within == 120\n"
        + f"    - ansible.builtin.command: {play / 'vifscope'} apply --commit --pending-dir {pending} --json\n"
        + "      when: applied.changed\n"
    )
    run = playbook(play, tasks)
    assert (run.returncode, recap(run)["changed"], recap(run)["failed"]) == (0, 2, 0), run.stdout + run.stderr
    assert not (pending / "pending.json").exists()  # committed: the watchdog has nothing to roll back
    assert "Active:         yes" in sh("virsh", "net-info", NET)
