"""Build and cache a tiny bootable guest (kernel + busybox initramfs) for lab VMs.

Why: the lab needs real QEMU guests whose virtio NICs answer ping, yet KVM does not work on
these machines (TCG only) and disk images would be slow and large. A Debian cloud kernel plus
a ~2 MB busybox initramfs boots to userspace in a few seconds and configures its NICs from the
kernel command line, so one cached image serves every lab domain.

Guest command line (read by the initramfs' /init):
    vs.ip<n>=A.B.C.D/P   static address of eth<n> (kernel order, hotplugged NICs included)
    vs.dhcp<n>=1         run udhcpc on eth<n> (its lease replaces eth<n>'s IPv4 addresses);
                         a NIC hot-plugged after boot with neither vs.ip<n> nor vs.dhcp<n> runs it too
    vs.gw=A.B.C.D        default route, added once a link can reach it
    vs.name=NAME         hostname
Every eth<n> comes up, with or without an address; /init polls every 2 s so hotplugged NICs
come up too. The console prints READY_MARKER once the boot-time NICs are configured.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

Log = Callable[[str], None]

DEFAULT_CACHE_DIR = Path("/var/cache/vifscope/guest")
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
HOST_BUSYBOX = Path("/bin/busybox")
READY_MARKER = "VS-GUEST-READY"
KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"
# Dependency order: any other order fails with unknown symbols (measured, see LAB-FACTS.md).
MODULE_ORDER = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
)
# Bump when the recipe changes in a way the stamp below cannot see (e.g. the build steps).
RECIPE_VERSION = 1
# A .build-* dir older than this was left by an interrupted build, not by a running one.
STALE_BUILD_SECONDS = 3600

# The guest's /init and udhcpc hook live beside this module as plain shell files
# (package data); they are hashed into the cache stamp, so editing them rebuilds the image.
_GUEST_FILES = resources.files("vifscope.lab") / "guest"


def _guest_script(name: str) -> str:
    return (_GUEST_FILES / name).read_text(encoding="utf-8")


class GuestImageError(RuntimeError):
    """The guest image could not be built; the message is one line ending with a hint."""


@dataclass(frozen=True)
class GuestImage:
    """Paths of a built guest, ready for libvirt direct kernel boot."""

    kernel: Path
    initrd: Path


def build_guest_image(cache_dir: Path, *, log: Log | None = None) -> GuestImage:
    """Return the cached guest image under cache_dir, building it first if needed.

    Why the layout: each recipe gets its own cache_dir/guest-<stamp>/ directory, so a changed
    recipe rebuilds while domains defined against an older image keep their files. The image
    is built in a temp dir inside cache_dir and renamed into place, so an interrupted build
    never leaves a half-made image behind, and a cache hit is two stat() calls.
    """
    say = log or _quiet
    image = _image_at(cache_dir / f"guest-{recipe_stamp()}")
    if _is_complete(image):
        return image
    _make_readable_dirs(cache_dir)
    _remove_stale_builds(cache_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        out = Path(tmp) / "image"
        out.mkdir()
        _build_into(out, Path(tmp) / "scratch", say)
        _publish(out, image.kernel.parent)
    say(f"guest image ready in {time.monotonic() - started:.1f} s: {image.kernel.parent}")
    return image


def recipe_stamp() -> str:
    """Return a short hash of everything that shapes the image, used as its cache key."""
    recipe = repr(
        (RECIPE_VERSION, KERNEL_METAPACKAGE, MODULE_ORDER, _guest_script("init.sh"), _guest_script("udhcpc.sh"))
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def _quiet(_message: str) -> None:
    """Default logger: building is silent unless the caller wants progress."""


def _image_at(target: Path) -> GuestImage:
    """Return the paths an image published in target has."""
    return GuestImage(kernel=target / KERNEL_NAME, initrd=target / INITRD_NAME)


def _is_complete(image: GuestImage) -> bool:
    """Tell whether the image exists (it is only ever published whole, by a rename)."""
    return image.kernel.is_file() and image.initrd.is_file()


def _make_readable_dirs(directory: Path) -> None:
    """Create directory and its missing parents with mode 0755.

    Why: QEMU runs as libvirt-qemu and must traverse them to open the kernel and initrd;
    libvirt's dynamic_ownership relabels the files, not the directories above them.
    """
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        path.chmod(0o755)


def _remove_stale_builds(cache_dir: Path) -> None:
    """Delete temp dirs left by builds that were killed; a fresh one may be a running build."""
    deadline = time.time() - STALE_BUILD_SECONDS
    for leftover in cache_dir.glob(".build-*"):
        with contextlib.suppress(FileNotFoundError):  # a twin build may just have removed it
            if leftover.stat().st_mtime < deadline:
                shutil.rmtree(leftover, ignore_errors=True)


def _publish(out: Path, target: Path) -> None:
    """Rename the finished image into place atomically; losing a race to a twin build is fine."""
    out.chmod(0o755)
    try:
        out.rename(target)
    except OSError as exc:
        if not _is_complete(_image_at(target)):
            raise GuestImageError(
                f"cannot move the built image to {target}: {exc}; hint: check permissions of {target.parent}"
            ) from exc


def _build_into(out: Path, scratch: Path, say: Log) -> None:
    """Fetch the kernel, assemble the initramfs, and write both (plus BUILD-INFO) into out."""
    package = _resolve_kernel_package()
    say(f"downloading {package}")
    deb = _download(package, scratch / "deb")
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], "dpkg-deb -f", "is the .deb intact?")
    root = scratch / "root"
    _run(["dpkg-deb", "-x", str(deb), str(root)], "dpkg-deb -x", "check free space in cache_dir")
    shutil.copyfile(_find_vmlinuz(root), out / KERNEL_NAME)
    tree = scratch / "initramfs"
    modules = _stage_modules(root, tree / "lib" / "modules", say)
    _stage_userland(tree)
    say(f"packing initramfs (modules: {' '.join(modules) or 'none, all builtin'})")
    _write_initrd(tree, out / INITRD_NAME)
    info = f"kernel_package={package}\nkernel_version={version.decode().strip()}\n"
    (out / "BUILD-INFO").write_text(info + f"modules={','.join(modules)}\n")
    for path in out.iterdir():
        path.chmod(0o644)


def _run(cmd: list[str], what: str, hint: str, *, cwd: Path | None = None, stdin: bytes = b"") -> bytes:
    """Run a host tool, return its stdout; a missing tool or a failure is a GuestImageError."""
    try:
        done = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise GuestImageError(f"{what} failed: {exc}; hint: {hint}") from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {done.returncode}"
        raise GuestImageError(f"{what} failed: {detail}; hint: {hint}")
    return done.stdout


def _resolve_kernel_package() -> str:
    """Return the versioned kernel package that the cloud kernel metapackage depends on."""
    hint = "is this Debian with apt sources? try apt-get update"
    text = _run(["apt-cache", "depends", KERNEL_METAPACKAGE], "apt-cache depends", hint)
    for line in text.decode().splitlines():
        match = re.match(r"\s*\|?Depends:\s*(linux-image-\S+)", line)
        if match:
            return match.group(1)
    raise GuestImageError(f"{KERNEL_METAPACKAGE} depends on no linux-image package; hint: {hint}")


def _download(package: str, dest: Path) -> Path:
    """Download package's .deb into dest (as root apt cannot sandbox into a private temp dir)."""
    dest.mkdir(parents=True)
    cmd = ["apt-get", "download", "-o", "APT::Sandbox::User=root", package]
    _run(cmd, "apt-get download", "check network/apt sources (apt-get update)", cwd=dest)
    debs = sorted(dest.glob("*.deb"))
    if len(debs) != 1:
        raise GuestImageError(f"apt-get download left {len(debs)} .deb files; hint: retry")
    return debs[0]


def _find_vmlinuz(root: Path) -> Path:
    """Return the kernel image shipped in the extracted package."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise GuestImageError("no boot/vmlinuz-* in the kernel package; hint: is it a kernel?")
    return kernels[0]


def _stage_modules(root: Path, dest: Path, say: Log) -> list[str]:
    """Copy the NIC modules, decompressed, into dest; return the names staged, in load order.

    Why decompress here: busybox insmod reads plain .ko files only. A module absent as a file
    must be builtin (listed in modules.builtin), otherwise the guest could have no network.
    """
    dest.mkdir(parents=True)
    files = {_module_name(p): p for p in root.rglob("*.ko*") if "modules" in p.parts}
    lists = root.rglob("modules.builtin")
    builtin = {_module_name(Path(line)) for f in lists for line in f.read_text().split()}
    staged = []
    for name in MODULE_ORDER:
        if name in files:
            (dest / f"{name}.ko").write_bytes(_decompressed(files[name]))
            staged.append(name)
        elif name in builtin:
            say(f"module {name} is builtin in this kernel")
        else:
            raise GuestImageError(f"kernel has no module {name}; hint: the lab needs virtio_net")
    return staged


def _module_name(path: Path) -> str:
    """Return the module name of a .ko / .ko.xz / .ko.zst / .ko.gz path (dashes become _)."""
    return path.name.split(".ko")[0].replace("-", "_")


def _decompressed(path: Path) -> bytes:
    """Return a module file's contents, decompressing .xz, .gz and .zst (via the zstd tool)."""
    if path.name.endswith(".xz"):
        return lzma.decompress(path.read_bytes())
    if path.name.endswith(".gz"):
        return gzip.decompress(path.read_bytes())
    if path.name.endswith(".zst"):
        return _run(["zstd", "-dc", str(path)], "zstd -d", "apt-get install zstd")
    return path.read_bytes()


def _stage_userland(tree: Path) -> None:
    """Put busybox, /init and the udhcpc hook into the initramfs tree."""
    for sub in ("bin", "dev", "etc", "proc", "root", "sys", "tmp"):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_static_busybox(), tree / "bin" / "busybox")
    init = _guest_script("init.sh").replace("@MODULES@", " ".join(MODULE_ORDER))
    (tree / "init").write_text(init.replace("@MARKER@", READY_MARKER))
    (tree / "etc" / "udhcpc.script").write_text(_guest_script("udhcpc.sh"))
    for executable in ("bin/busybox", "init", "etc/udhcpc.script"):
        (tree / executable).chmod(0o755)


def _static_busybox() -> Path:
    """Return the host's busybox, refusing a dynamic one (the initramfs has no libc to load)."""
    hint = "apt-get install busybox-static"
    if not HOST_BUSYBOX.is_file():
        raise GuestImageError(f"{HOST_BUSYBOX} not found; hint: {hint}")
    if _has_interpreter(HOST_BUSYBOX):
        raise GuestImageError(f"{HOST_BUSYBOX} is not a static x86-64 binary; hint: {hint}")
    return HOST_BUSYBOX


def _has_interpreter(path: Path) -> bool:
    """Tell whether a 64-bit little-endian ELF has a PT_INTERP header (i.e. is dynamic)."""
    with path.open("rb") as elf:
        header = elf.read(64)
        if header[:6] != b"\x7fELF\x02\x01":
            return True  # not an x86-64 ELF: treat as unusable, like a dynamic one
        (phoff,) = struct.unpack_from("<Q", header, 32)
        entsize, count = struct.unpack_from("<HH", header, 54)
        elf.seek(phoff)
        table = elf.read(entsize * count)
    pt_interp = 3
    return any(struct.unpack_from("<I", table, i * entsize)[0] == pt_interp for i in range(count))


def _write_initrd(tree: Path, dest: Path) -> None:
    """Pack tree as a gzip'd newc cpio (no cpio tool on the host: busybox cpio does it)."""
    names = ["."]
    for top, dirs, files in os.walk(tree):
        dirs.sort()
        rel = Path(top).relative_to(tree)
        names += [str(rel / name) for name in (*dirs, *sorted(files))]
    archive = _run(
        [str(HOST_BUSYBOX), "cpio", "-o", "-H", "newc"],
        "busybox cpio",
        "apt-get install busybox-static",
        cwd=tree,
        stdin="\n".join(names).encode() + b"\n",
    )
    dest.write_bytes(gzip.compress(archive, compresslevel=9, mtime=0))
