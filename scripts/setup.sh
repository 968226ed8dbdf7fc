#!/usr/bin/env bash
# Idempotent set-up for a Debian 12 host: system packages, then .venv with vifscope.
# A second run only checks (a few seconds): packages are installed only when missing and
# the venv is reinstalled only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(libvirt-daemon-system libvirt-clients qemu-system-x86 openvswitch-switch iproute2
      dnsmasq-base busybox-static iputils-ping ethtool tcpdump nftables iptables conntrack
      libvirt-dev pkg-config gcc python3-dev python3-venv clang libbpf-dev)
# Only the test suite needs these (a real Prometheus + promtool, a headless browser, Graphviz):
# `make demo` does not install them on a user's host.
TEST_PKGS=(prometheus chromium chromium-driver graphviz postgresql iperf3 bpftool)
[ "${1:-}" = "--test" ] && PKGS+=("${TEST_PKGS[@]}")
PYTHON=${PYTHON:-python3}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run as root (or apt-get install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for a concurrent apt/dpkg (another checkout's set-up, unattended-upgrades) instead of
  # failing at once on the lock.
  lock=(-o DPkg::Lock::Timeout=900)
  apt-get "${lock[@]}" update -qq
  apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# python3-venv may be the pyenv/other Python's; any Python >= 3.11 with venv works.
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: $PYTHON is older than 3.11; set PYTHON=python3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.vifscope-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c 'import vifscope, libvirt' 2>/dev/null; then
  echo "setup: installing vifscope into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
# vifscope flows' BPF program (src/vifscope/sources/flows/bpf/flows.bpf.c): compiled only when
# the source changed since the last build (its sha256 is the stamp). Without clang the prebuilt
# object shipped beside the source is used; `vifscope flows --json` says which ("program").
bpf=src/vifscope/sources/flows/bpf
bpf_want=$(sha256sum "$bpf/flows.bpf.c" | cut -d' ' -f1)
if [ "$(cat "$bpf/build/flows.bpf.c.sha256" 2>/dev/null)" != "$bpf_want" ]; then
  if command -v clang >/dev/null && [ -f /usr/include/bpf/bpf_helpers.h ]; then
    mkdir -p "$bpf/build"
    # asm/types.h lives under the multiarch include dir, which clang -target bpf does not search;
    # the debug info names "." as the build directory, so the object is the same from any checkout.
    (cd "$bpf" && clang -O2 -g -fdebug-compilation-dir=. -target bpf -Wall -Werror -I"/usr/include/$(gcc -dumpmachine)" \
       -c flows.bpf.c -o build/flows.bpf.o.tmp && mv build/flows.bpf.o.tmp build/flows.bpf.o)
    echo "$bpf_want" > "$bpf/build/flows.bpf.c.sha256"
    echo "setup: compiled $bpf/build/flows.bpf.o"
  else
    echo "setup: no clang/libbpf-dev: vifscope flows uses the prebuilt $bpf/flows.bpf.o"
  fi
fi
# Byte-compile the package (the install is editable, so imports read src/): a one-shot
# status/doctor otherwise compiles ~40 modules (~40 ms) on every run where the environment
# sets PYTHONDONTWRITEBYTECODE. Only changed files are recompiled.
.venv/bin/python -m compileall -q src/vifscope >/dev/null
# The service units, where systemd runs (these lab machines have none): watch --heal, the
# fleet agent (serve) and the hub's fleet sync. Installed, not enabled: which host runs which
# is the admin's decision (systemctl enable --now vifscope-watch / vifscope-agent / ...).
if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ]; then
  for name in vifscope-watch vifscope-agent vifscope-fleet-sync; do
    unit=/etc/systemd/system/$name.service
    sed "s|@VIFSCOPE@|$PWD/.venv/bin/vifscope|" "contrib/systemd/$name.service" > "$unit.tmp"
    if ! cmp -s "$unit.tmp" "$unit"; then
      mv "$unit.tmp" "$unit" && systemctl daemon-reload && echo "setup: installed $unit"
    else
      rm -f "$unit.tmp"
    fi
  done
fi
echo "setup: ok ($(.venv/bin/vifscope --version))"
