#!/usr/bin/python
# vifscope status / doctor on the managed host, as facts.
from __future__ import annotations

DOCUMENTATION = r"""
module: vifscope_facts
short_description: vifscope status and doctor JSON as facts
description:
  - Runs C(vifscope status --json) and (unless I(doctor=false)) C(vifscope doctor --json) and
    returns them as the facts C(vifscope_status) and C(vifscope_doctor). Exit code 1 (problems
    found) is a result, not a failure; 2 or 3 fail the task with vifscope's one-line error.
options:
  vifscope:
    description: The vifscope binary (default C(vifscope) on PATH).
    type: path
  connect:
    description: libvirt URI (C(-c)).
    type: str
  doctor:
    description: Also run doctor.
    type: bool
    default: true
author: vifscope contributors
"""

EXAMPLES = r"""
- vifscope.kvm.vifscope_facts:
- debug:
    var: vifscope_doctor.summary
"""

RETURN = r"""
ansible_facts:
  description: vifscope_status (and vifscope_doctor), vifscope's --json documents.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vifscope.kvm.plugins.module_utils.vifscope_run import fail_from, find_vifscope, run_json


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vifscope=dict(type="path"), connect=dict(type="str"), doctor=dict(type="bool", default=True)
        ),
        supports_check_mode=True,
    )
    binary = find_vifscope(module)
    extra = ["-c", module.params["connect"]] if module.params["connect"] else []
    facts = {}
    for name in ("status", "doctor") if module.params["doctor"] else ("status",):
        argv = [binary, name, "--json", *extra]
        rc, doc, err = run_json(module, argv)
        if rc not in (0, 1):
            fail_from(module, argv, rc, doc, err)
        facts["vifscope_" + name] = doc
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
