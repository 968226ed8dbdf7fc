"""Doctor's config file, its report layer (--domain selection, exit codes) and its CLI paths
that need no real host (usage errors, --explain, --list, a libvirt test-driver host)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden_checks.loader import CASES_DIR, load_case
from vifscope.bind.join import bind
from vifscope.checks import ConfigError, DoctorConfig, evaluate, load_config, parse_config
from vifscope.cli.main import main
from vifscope.report.findings import doctor_exit_code, doctor_report, select


def test_config_defaults_and_values(tmp_path: Path) -> None:
    assert DoctorConfig().no_lease_grace_s == 120
    cfg = parse_config(
        '[doctor]\ntxqueuelen_min = 200\nconntrack_full_pct = 90\nskip = ["perf.no_vhost"]\n[watch]\nx = 1\n'
    )
    assert (cfg.txqueuelen_min, cfg.conntrack_full_pct, cfg.skip) == (200, 90.0, ("perf.no_vhost",))
    path = tmp_path / "v.toml"
    path.write_text("[doctor]\nno_lease_grace_s = 5\n")
    assert load_config(path).no_lease_grace_s == 5


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[doctor]\nbogus = 1\n", "unknown key doctor.bogus"),
        ("[doctor]\ntxqueuelen_min = 'x'\n", "must be int"),
        ("[doctor]\ntxqueuelen_min = true\n", "must be int"),
        ("[doctor]\nskip = [1]\n", "list of check ids"),
        ("[doctor\n", "not valid TOML"),
        ("doctor = 3\n", "must be a table"),
    ],
)
def test_config_errors_name_the_problem(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_config(text)


def test_explicit_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_domain_selection_keeps_what_the_domain_depends_on() -> None:
    case = load_case(CASES_DIR / "bridge-no-uplink")
    bindings = bind(case.snap)
    run = evaluate(case.snap, bindings)
    web = select(run, bindings, ["vs-d-web1"])
    assert {f.domain for f in web.findings} <= {"vs-d-web1", None}
    assert any(f.check == "bridge.no_uplink" for f in web.findings), "web1's bridge lost its uplink"
    assert any(f.check == "host.vhost_net_missing" for f in web.findings), "host findings always apply"
    ovs = select(run, bindings, ["vs-d-ovs1"])
    assert not any(f.check == "bridge.no_uplink" for f in ovs.findings), "ovs1 is not on vs-d-br0"
    assert {s.domain for s in ovs.isolation} == {"vs-d-ovs1"}


def test_exit_codes() -> None:
    healthy = load_case(CASES_DIR / "healthy-lab")
    assert doctor_exit_code(healthy.snap, bind(healthy.snap), evaluate(healthy.snap, bind(healthy.snap)).findings) == 0
    down = load_case(CASES_DIR / "ovs-not-running")
    assert doctor_exit_code(down.snap, bind(down.snap), ()) == 3


def test_report_is_json_and_counts() -> None:
    case = load_case(CASES_DIR / "lab-baseline")
    doc = doctor_report(case.snap, evaluate(case.snap, bind(case.snap)), bind(case.snap))
    assert doc["summary"] == {"error": 1, "warning": 8, "info": 2}  # per-host and per-bridge causes are reported once
    layers = doc["isolation"][0]["layers"]
    assert list(layers) == ["physical", "host", "virtual", "application"]
    assert json.loads(json.dumps(doc)) == doc


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--explain", "no.such.check"]) == 2
    assert "unknown check id" in capsys.readouterr().err
    assert main(["doctor", "--only", "binding,nonsense"]) == 2
    assert "unknown category nonsense" in capsys.readouterr().err
    assert main(["doctor", "--probe"]) == 2
    assert main(["doctor", "--config", "/nonexistent/vs.toml"]) == 2


def test_cli_explain_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--explain", "host.br_netfilter_drop"]) == 0
    out = capsys.readouterr().out
    assert "Docker" in out and "Why it matters" in out
    assert main(["doctor", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["checks"]
    assert {"check": "vif.detached", "category": "binding", "severity": "error", "title": "tap on no bridge"} in rows


def test_cli_on_the_libvirt_test_driver(capsys: pytest.CaptureFixture[str]) -> None:
    """A whole doctor run against libvirt's test driver: no crash, the --json contract holds.
    Its 'testnet0' tap does not exist on this host, so vif.missing is a true finding."""
    code = main(["-c", "test:///default", "doctor", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert {"findings", "source_errors", "summary", "skipped", "isolation", "notes"} <= doc.keys()
    missing = [f for f in doc["findings"] if f["check"] == "vif.missing"]
    assert [(f["domain"], f["target"]) for f in missing] == [("test", "testnet0")]
    assert code == 1


def test_cli_libvirt_unreachable_is_exit_3_with_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    """libvirt down: one error line and hint, host-level checks still run, libvirt's are listed as skipped."""
    code = main(["-c", "qemu+unix:///system?socket=/nonexistent/vs-sock", "doctor", "--only", "network,host"])
    out, err = capsys.readouterr()
    assert code == 3
    assert err.startswith("error: cannot connect to libvirt") and "hint:" in err and "Traceback" not in err
    assert "not evaluated: ip.no_lease: DHCP leases could not be read" in out
