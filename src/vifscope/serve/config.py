"""``serve`` settings: the ``[serve]`` table of the vifscope TOML file (default
/etc/vifscope/vifscope.toml, shared with ``[doctor]``), command-line flags on top. Every key
is optional:

    [serve]
    listen = "127.0.0.1:8777"   # a non-loopback address needs token_file
    token_file = "/etc/vifscope/api-token"   # bearer token for POST fix / heal / link; mode 0600
    audit_log = "/var/log/vifscope/actions.jsonl"
    interval = 1.0              # seconds between live snapshots while a page is open
    timeout = 3.0               # deadline per source (libvirt, links, OVSDB) for one snapshot
    max_body = 65536            # bytes; a larger request body gets 413
    host_id = "kvm-rack3-07"    # this host's name for a fleet hub (default: /etc/machine-id)
    read_token_file = "/etc/vifscope/read-token"   # reads need it (or the API token); mode 0600
    tls_cert = "/etc/vifscope/tls/cert.pem"   # both set: HTTPS (PEM; the key unencrypted)
    tls_key = "/etc/vifscope/tls/key.pem"

Without token_file the API is read-only: the mutating endpoints answer 403.
"""

from __future__ import annotations

import ipaddress
import ssl
import stat
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vifscope.actions.audit import DEFAULT_AUDIT_LOG
from vifscope.checks import DoctorConfig, parse_config
from vifscope.model.tomlconf import toml_doc, toml_table

DEFAULT_PATH = Path("/etc/vifscope/vifscope.toml")
DEFAULT_LISTEN = "127.0.0.1:8777"
MIN_TOKEN_LENGTH = 16


class ServeConfigError(ValueError):
    """A bad setting: one line; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class ServeConfig:
    listen: str = DEFAULT_LISTEN
    token_file: Path | None = None
    audit_log: Path = DEFAULT_AUDIT_LOG
    interval: float = 1.0
    timeout: float = 3.0
    max_body: int = 65536
    host_id: str | None = None  # None: the machine-id (serve.host.Identity)
    read_token_file: Path | None = None  # None: reads are open (serve.readauth)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    doctor: DoctorConfig = field(default_factory=DoctorConfig)  # thresholds for /api/v1/findings


_KEYS: dict[str, type | tuple[type, ...]] = {
    "listen": str,
    "token_file": str,
    "audit_log": str,
    "interval": (int, float),
    "timeout": (int, float),
    "max_body": int,
    "host_id": str,
    "read_token_file": str,
    "tls_cert": str,
    "tls_key": str,
}
_PATHS = ("token_file", "audit_log", "read_token_file", "tls_cert", "tls_key")


def _value(key: str, raw: Any, path: Path) -> Any:
    want = _KEYS.get(key)
    if want is None:
        raise ServeConfigError(f"{path}: unknown key serve.{key}", f"known keys: {', '.join(_KEYS)}")
    if isinstance(raw, bool) or not isinstance(raw, want):
        raise ServeConfigError(f"{path}: serve.{key} has the wrong type: {raw!r}")
    if isinstance(raw, int | float) and raw <= 0:
        raise ServeConfigError(f"{path}: serve.{key} must be > 0, got {raw!r}")
    if isinstance(raw, str) and key in _PATHS:
        return Path(raw)
    if isinstance(raw, int | float) and key in ("interval", "timeout"):
        return float(raw)
    return raw


def parse_serve_config(text: str, path: Path = DEFAULT_PATH) -> ServeConfig:
    table = toml_table(toml_doc(text, ServeConfigError, str(path)), "serve", ServeConfigError, str(path))
    doctor = parse_config(text, path)  # the [doctor] thresholds findings are judged by
    return ServeConfig(doctor=doctor, **{k: _value(k, v, path) for k, v in table.items()})


def load_serve_config(path: Path | None = None) -> ServeConfig:
    """``path`` given: it must exist. Default path: absent means the built-in defaults."""
    target = path or DEFAULT_PATH
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if path is None:
            return ServeConfig()
        raise ServeConfigError(f"{target}: no such file", "pass an existing file to --config") from exc
    except OSError as exc:
        raise ServeConfigError(f"{target}: {exc.strerror or exc}") from exc
    try:
        return parse_serve_config(text, target)
    except ValueError as exc:  # the [doctor] part's ConfigError
        if isinstance(exc, ServeConfigError):
            raise
        raise ServeConfigError(str(exc)) from exc


def with_overrides(cfg: ServeConfig, **flags: Any) -> ServeConfig:
    """Command-line flags that were given (not None) win over the file."""
    known = {f.name for f in fields(ServeConfig)}
    return replace(cfg, **{k: v for k, v in flags.items() if v is not None and k in known})


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8777', '[::1]:8777', 'localhost:8777'; port 0 picks a free one."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ServeConfigError(f"listen wants HOST:PORT, got {value!r}", "e.g. --listen 127.0.0.1:8777")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve anywhere


def load_token(path: Path) -> str:
    """The bearer token: the file's content without surrounding whitespace.

    Refused when others can read the file (anyone on the host could then change bindings),
    or when it is shorter than 16 characters (guessable)."""
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ServeConfigError(
            f"cannot read the token file {path}: {exc.strerror or exc}", "create it, e.g. 'openssl rand -hex 32'"
        ) from exc
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ServeConfigError(f"token file {path} is readable by other users", f"chmod 600 {path}")
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ServeConfigError(
            f"token in {path} must be one word of at least {MIN_TOKEN_LENGTH} characters",
            f"e.g. 'openssl rand -hex 32 > {path}'",
        )
    return token


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context when both files are set (None when neither is): loaded here,
    before listening, so a wrong path or a key that does not match is one line at start-up."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ServeConfigError("TLS needs both a certificate and its key", "set --tls-cert and --tls-key together")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:  # an OSError too: first
        raise ServeConfigError(
            f"the TLS certificate or key is not usable: {exc.reason or exc}",
            "PEM files, an unencrypted key that matches the certificate",
        ) from exc
    except OSError as exc:
        raise ServeConfigError(f"cannot read the TLS files: {exc.strerror or exc}", f"check {cert} and {key}") from exc
    return ctx
