"""Connecting to the store and bringing its schema to the current revision.

SQLite (the embedded default): WAL so readers never wait for the writer, a busy timeout so
concurrent writers queue instead of failing, and ``BEGIN IMMEDIATE`` on every transaction:
a deferred transaction that reads and then writes cannot wait for a lock (SQLite answers
SQLITE_BUSY at once to avoid a deadlock), an immediate one takes the write lock up front.
PostgreSQL (``postgresql+psycopg://``): one set of pools for many hosts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from vifscope.store.url import redacted

HEAD = "0003"  # the newest migration; a unit test checks it against Alembic's script directory
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_S = 60.0
_MIGRATE_LOCK = 0x76696673  # "vifs": pg_advisory_xact_lock key serializing first-use migrations


class StoreError(RuntimeError):
    """A store operation that did not happen; ``hint`` says what to do, ``exit_code`` how to end."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class StoreRefused(StoreError):
    """Bad input or a rule of the pools (overlap, unknown pool, allocations left): exit 2."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened: exit 3."""

    exit_code = 3


class PoolExhausted(StoreError):
    """The pool has fewer free MACs than asked for; nothing was allocated: exit 4."""

    exit_code = 4


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # isolation_level None: the driver opens no transaction of its own; _sqlite_begin does.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a crash of vifscope
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def sqlite_missing(url: str) -> bool:
    """True for an SQLite URL whose file does not exist yet (read-only commands need not make it)."""
    path = _sqlite_file(url)
    return path is not None and not path.exists()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (not yet connected). StoreRefused for a URL that is not one."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if parsed.get_backend_name() != "postgresql":
            raise ArgumentError(f"backend {parsed.get_backend_name()!r} is not supported (sqlite or postgresql)")
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2: we ship psycopg 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreRefused(
            f"not a usable database URL: {redacted(url)}: {exc}",
            "use sqlite:////path/to/file.db or postgresql+psycopg://user@host/dbname",
        ) from exc


def _ensure_dir(url: str) -> None:
    path = _sqlite_file(url)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create {path.parent}: {exc.strerror or exc}",
            "run as root, or point --db (or $VIFSCOPE_DB) at a writable sqlite:////path/file.db",
        ) from exc


def migrate(engine: Engine) -> None:
    """Bring the schema to HEAD. One transaction, serialized between processes (SQLite's
    write lock; a PostgreSQL advisory lock), so ten first uses at once create it once."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
        if inspect(conn).has_table("alembic_version"):
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if current == HEAD:
                return  # the usual case: no Alembic import, ~1 ms
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_store(url: str) -> Engine:
    """A connected engine whose schema is current. StoreUnavailable when it cannot be."""
    _ensure_dir(url)
    engine = make_engine(url)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        raise StoreUnavailable(
            f"store {redacted(url)} is unavailable: {str(exc.orig).strip().splitlines()[0]}",
            "is the database running and reachable? pick another with --db URL or $VIFSCOPE_DB",
        ) from exc
    return engine
