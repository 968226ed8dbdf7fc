"""A private PostgreSQL 15 server for the store tests and benches (initdb into a temporary
directory, reachable only on a unix socket there, stopped and removed afterwards even when a
test fails), and the store fixtures built on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vifscope.store.engine import open_store

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=120)


@contextmanager
def private_postgres(prefix: str = "vs-pg-") -> Iterator[str]:
    """A throw-away PostgreSQL listening on no TCP port, only on a socket in its own temporary
    directory; yields the SQLAlchemy URL of a fresh database. (bench/mac_alloc.py uses it too.)"""
    if os.geteuid() != 0:
        raise RuntimeError("starting a private PostgreSQL needs root (runuser -u postgres)")
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL 15 server in {PG_BIN}: scripts/setup.sh --test installs it")
    top = Path(tempfile.mkdtemp(prefix=prefix))
    data, sock = top / "data", top / "sock"
    sock.mkdir()
    shutil.chown(top, "postgres")
    shutil.chown(sock, "postgres")
    started = False
    try:
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        opts = f"-k {sock} -h '' -c listen_addresses='' -c max_connections=50"
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(top / "log"), "-w", "start")
        started = True
        _as_postgres(str(PG_BIN / "createdb"), "-h", str(sock), "-U", "postgres", "vifscope")
        yield f"postgresql+psycopg://postgres@/vifscope?host={sock}"
    finally:
        if started:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(top, ignore_errors=False)


def empty_store(request: pytest.FixtureRequest, tmp_path: Path, tables: tuple[str, ...]) -> str:
    """A store with no rows in ``tables``: a new SQLite file, or the module's private
    PostgreSQL (its ``pg_url`` fixture) with those tables emptied (children first)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vifscope.db'}"
    pg: str = request.getfixturevalue("pg_url")
    engine = open_store(pg)
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    engine.dispose()
    return pg
