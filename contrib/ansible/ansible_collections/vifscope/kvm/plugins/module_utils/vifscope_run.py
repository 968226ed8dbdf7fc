# Shared by the vifscope.kvm modules: find the vifscope binary and run it with --json.
from __future__ import annotations

import json
import os
import shlex

# Where setup.sh puts it when vifscope is not on PATH (a checkout's .venv).
FALLBACKS = ("/usr/local/bin/vifscope", "/opt/vifscope/.venv/bin/vifscope")


def find_vifscope(module):
    given = module.params.get("vifscope")
    if given:
        return given
    found = module.get_bin_path("vifscope")
    if found:
        return found
    for path in FALLBACKS:
        if os.access(path, os.X_OK):
            return path
    module.fail_json(msg="vifscope not found on PATH; set the vifscope parameter (e.g. /path/to/.venv/bin/vifscope)")


def run_json(module, argv):
    """(rc, document, stderr) of a vifscope --json run; fails the task on output that is not JSON."""
    rc, out, err = module.run_command(argv)
    try:
        doc = json.loads(out) if out.strip() else {}
    except ValueError:
        module.fail_json(msg=f"{shlex.join(argv)}: output is not JSON", rc=rc, stdout=out, stderr=err)
    return rc, doc, err


def fail_from(module, argv, rc, doc, err, **extra):
    """Fail with vifscope's own one-line error (and hint) rather than a traceback."""
    msg = doc.get("error") or (err.strip().splitlines() or [f"exit code {rc}"])[-1]
    if doc.get("hint"):
        msg = "{} (hint: {})".format(msg, doc["hint"])
    module.fail_json(msg=msg, rc=rc, cmd=shlex.join(argv), **extra)
