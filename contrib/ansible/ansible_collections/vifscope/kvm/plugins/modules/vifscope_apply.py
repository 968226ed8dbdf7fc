#!/usr/bin/python
# Converge a KVM host's network with `vifscope apply` (check mode: `vifscope apply --plan`).
from __future__ import annotations

DOCUMENTATION = r"""
module: vifscope_apply
short_description: Make a KVM host's bridges, libvirt networks and guest NICs what a vifscope apply file declares
description:
  - Runs C(vifscope apply FILE --plan --json) first; in check mode that is all it does.
  - Otherwise, when the plan has changes, runs C(vifscope apply FILE --json) (checkpoint, apply,
    verify, roll back on failure). C(changed) is true exactly when the plan had changes.
  - Diff mode shows each planned change as before/after.
  - A refused plan, an invalid file, a rollback or an unavailable source fails the task with
    vifscope's one-line error and hint.
options:
  path:
    description: The apply file on the managed host. One of I(path) or I(state) is required.
    type: path
  state:
    description: The apply file's content inline (bridges, networks, domains).
    type: dict
  vifscope:
    description: The vifscope binary (default C(vifscope) on PATH).
    type: path
  connect:
    description: libvirt URI (C(-c)); apply only changes the local host.
    type: str
  audit_log:
    description: Audit log path (C(--audit-log)).
    type: path
  settle:
    description: How long verification may wait, seconds (C(--settle)).
    type: float
  confirm_within:
    description:
      - Seconds (C(--confirm-within)) within which the change must be confirmed with
        C(vifscope apply --commit), else vifscope's watchdog rolls it back by itself (the
        checkpoint: every object the file names, QoS included).
      - Follow up with a task that needs the changed network (the next task over SSH is one)
        and then C(vifscope apply --commit); see EXAMPLES. C(vifscope apply --rollback) undoes
        it at once. Nothing to change: nothing is pending.
    type: float
  pending_dir:
    description: Where the pending confirmation is kept (C(--pending-dir)); give the same to C(--commit).
    type: path
author: vifscope contributors
"""

EXAMPLES = r"""
- name: host network as declared
  vifscope.kvm.vifscope_apply:
    path: /etc/vifscope/host.yaml

- name: inline
  vifscope.kvm.vifscope_apply:
    vifscope: /opt/vifscope/.venv/bin/vifscope
    state:
      bridges:
        - {name: br-prod, kind: linux, stp: false}

- name: apply, rolled back by itself unless confirmed within 2 minutes
  vifscope.kvm.vifscope_apply:
    path: /etc/vifscope/host.yaml
    confirm_within: 120
  register: applied

- name: a new connection, so the next task proves the host is reachable over the changed network
  ansible.builtin.meta: reset_connection

- name: still reachable
  ansible.builtin.ping:

- name: keep it
  ansible.builtin.command: vifscope apply --commit
  when: applied.changed
"""

RETURN = r"""
plan:
  description: C(vifscope apply --plan --json) (changes, refused, summary).
  returned: always
  type: dict
result:
  description: >-
    C(vifscope apply --json) (status, applied, audit_log, run...; confirm_within when the change
    awaits C(vifscope apply --commit)); absent in check mode or nothing to do.
  returned: when applied
  type: dict
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vifscope.kvm.plugins.module_utils.vifscope_run import fail_from, find_vifscope, run_json


def _side(line, after):
    # "mtu 1500 → 9000": before is the left of the arrow, after the right.
    if "→" in line:
        head, _, tail = line.partition("→")
        return (tail if after else head).strip()
    return line if after else "-"


def plan_diff(plan):
    """Ansible diff (before/after text) of a plan: one block per changed object."""
    before, after = [], []
    for ch in plan.get("changes", []):
        title = "{} {}".format(ch.get("kind"), ch.get("name"))
        what = ch.get("what") or [ch.get("op", "")]
        if ch.get("op") == "create":
            before.append(f"{title}: absent\n")
            after.append("{}:\n{}".format(title, "".join(f"  {w}\n" for w in what)))
        elif ch.get("op") == "remove":
            before.append(f"{title}: present\n")
            after.append(f"{title}: absent\n")
        else:
            before.append("{}:\n{}".format(title, "".join(f"  {_side(w, False)}\n" for w in what)))
            after.append("{}:\n{}".format(title, "".join(f"  {_side(w, True)}\n" for w in what)))
    return {"before": "".join(before), "after": "".join(after)}


def file_of(module):
    if module.params["path"]:
        return module.params["path"], None
    # JSON is YAML: the inline dict is written as is, validated by vifscope like any file.
    fd, name = tempfile.mkstemp(prefix="vifscope-apply-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        json.dump(module.params["state"], fh)
    return name, name


def common_args(module):
    argv = []
    if module.params["connect"]:
        argv += ["-c", module.params["connect"]]
    return argv


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            state=dict(type="dict"),
            vifscope=dict(type="path"),
            connect=dict(type="str"),
            audit_log=dict(type="path"),
            settle=dict(type="float"),
            confirm_within=dict(type="float"),
            pending_dir=dict(type="path"),
        ),
        required_one_of=[("path", "state")],
        mutually_exclusive=[("path", "state")],
        supports_check_mode=True,
    )
    binary = find_vifscope(module)
    path, temp = file_of(module)
    try:
        run(module, binary, path)
    finally:
        if temp:
            os.unlink(temp)


def apply_argv(module, binary, path):
    """The ``vifscope apply`` that changes the host (after a plan with changes)."""
    p = module.params
    argv = [binary, "apply", path, "--json", *common_args(module)]
    if p["audit_log"]:
        argv += ["--audit-log", p["audit_log"]]
    if p["settle"] is not None:
        argv += ["--settle", str(p["settle"])]
    if p["confirm_within"] is not None:
        if p["confirm_within"] <= 0:
            module.fail_json(msg="confirm_within must be > 0 seconds")
        argv += ["--confirm-within", str(p["confirm_within"])]
    if p["pending_dir"]:
        argv += ["--pending-dir", p["pending_dir"]]
    return argv


def run(module, binary, path):
    argv = [binary, "apply", path, "--plan", "--json", *common_args(module)]
    rc, plan, err = run_json(module, argv)
    if rc not in (0, 1):
        fail_from(module, argv, rc, plan, err)
    if plan.get("refused"):
        module.fail_json(msg="vifscope refused: " + "; ".join(plan["refused"]), plan=plan, cmd=" ".join(argv))
    changed = bool(plan.get("changes"))
    out = dict(changed=changed, plan=plan)
    if module._diff:
        out["diff"] = plan_diff(plan)
    if module.check_mode or not changed:
        module.exit_json(**out)
    argv = apply_argv(module, binary, path)
    rc, result, err = run_json(module, argv)
    out["result"] = result
    if rc != 0:
        if result.get("status"):
            msg = "vifscope apply {}: {}".format(result["status"], result.get("error") or "see result")
            module.fail_json(msg=msg, rc=rc, **out)
        fail_from(module, argv, rc, result, err, plan=plan)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
