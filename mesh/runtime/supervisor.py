"""Everything `meshmart run` starts, in order, and stops again in reverse order by PID.

Each start registers its stop on an ExitStack, so Ctrl-C, SIGTERM or a failed start all lead
to the same place: everything that was started is stopped. Once the shop is up, a child that
exits is restarted, as kubelet restarts a container. The three
servers (PostgreSQL, Kafka, Zipkin) start at once; the mesh waits for all of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from mesh.infra.databases import prepare_databases
from mesh.infra.kafka import (
    KafkaBroker,
    TopicSpec,
    ensure_topics,
    running_kafka,
    start_kafka,
    stop_kafka,
)
from mesh.infra.postgres import running_server, start_postgres, stop_postgres
from mesh.infra.zipkin import ZipkinServer, running_zipkin, start_zipkin, stop_zipkin
from mesh.paths import postgres_data_dir
from mesh.runtime.polling import wait_until
from mesh.runtime.processes import Child, exit_text
from mesh.runtime.restarts import Restarts
from services.common.events import TOPIC_PARTITIONS

READY_TIMEOUT_SECONDS = 60.0
_S = TypeVar("_S")
TOPICS = [TopicSpec(name, partitions) for name, partitions in TOPIC_PARTITIONS.items()]


class Supervisor:
    def __init__(self, run_dir: Path, progress: Callable[[str], None] = print) -> None:
        self.run_dir = run_dir.resolve()
        self.progress = progress
        self.children: list[Child] = []
        self._restarts: dict[str, Restarts] = {}
        self._stack = contextlib.ExitStack()

    # --- infrastructure ------------------------------------------------------------------

    def infrastructure(
        self, pg_bin: Path | None, *, zipkin: bool
    ) -> tuple[str, KafkaBroker, ZipkinServer | None]:
        """PostgreSQL, Kafka and (with `zipkin`) Zipkin, started side by side: each mostly
        waits on its own JVM or server, so the slowest sets the time instead of the sum."""
        with concurrent.futures.ThreadPoolExecutor(3, thread_name_prefix="start") as pool:
            postgres = pool.submit(self.postgres, pg_bin)
            kafka = pool.submit(self.kafka)
            tracing = pool.submit(self.zipkin) if zipkin else None
            _wait_for_all([f for f in (postgres, kafka, tracing) if f is not None])
            return postgres.result(), kafka.result(), tracing.result() if tracing else None

    def postgres(self, pg_bin: Path | None) -> str:
        """The admin DSN of $MESHMART_PG_DSN, or of a server started (and later stopped) here."""
        external = os.environ.get("MESHMART_PG_DSN")
        if external:
            admin_dsn = external
        else:
            data = postgres_data_dir(self.run_dir)
            bin_dir = pg_bin or (Path(p) if (p := os.environ.get("MESHMART_PG_BIN")) else None)
            admin_dsn = self._own(
                "PostgreSQL",
                lambda: running_server(data),
                lambda: start_postgres(data, bin_dir=bin_dir, progress=self.progress),
                lambda: stop_postgres(data),
            ).admin_dsn
        prepare_databases(admin_dsn, self.progress)
        return admin_dsn

    def kafka(self) -> KafkaBroker:
        broker = self._own(
            "Kafka",
            lambda: running_kafka(self.run_dir),
            lambda: start_kafka(self.run_dir, progress=self.progress),
            lambda: stop_kafka(self.run_dir),
        )
        asyncio.run(ensure_topics(broker.bootstrap_servers, TOPICS))
        return broker

    def zipkin(self) -> ZipkinServer:
        return self._own(
            "Zipkin",
            lambda: running_zipkin(self.run_dir),
            lambda: start_zipkin(self.run_dir, progress=self.progress),
            lambda: stop_zipkin(self.run_dir),
        )

    def _own(
        self,
        what: str,
        running: Callable[[], _S | None],
        start: Callable[[], _S],
        stop: Callable[[], bool],
    ) -> _S:
        """Start a server, or use the one already running; only one started here is stopped
        when the run ends (a server the user keeps running stays running)."""
        already = running() is not None
        server = start()
        if not already:
            self._stack.callback(self._stop, what, stop)
        return server

    def _stop(self, what: str, stop: Callable[[], bool]) -> None:
        if stop():
            self.progress(f"stopped {what}")

    # --- children --------------------------------------------------------------------------

    def start(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        self._stack.callback(self._stop_child, child)
        return child

    def _stop_child(self, child: Child) -> None:
        code = child.stop(timeout=15)
        if code is not None:
            self.progress(f"stopped {child.name} (pid {child.pid}, exit {code})")

    def wait_ready(self, child: Child, ready: Callable[[], bool], what: str) -> None:
        began = time.monotonic()
        if not wait_until(ready, READY_TIMEOUT_SECONDS, unless=lambda: child.exited() is not None):
            raise RuntimeError(f"{what} did not become ready:\n{child.log_tail()}")
        self.progress(f"{what} ready ({time.monotonic() - began:.1f} s, pid {child.pid})")

    def watch(self, on_change: Callable[[], None], interval: float = 0.2) -> NoReturn:
        """Restart every child that exits, after kubelet's back-off (mesh.runtime.restarts),
        until a signal ends the run (it reaches the caller as an exception). `on_change` runs
        after each exit and each restart, so state.json always names the live PIDs."""
        while True:
            now = time.monotonic()
            for child in self.children:
                restarts = self._restarts.setdefault(child.name, Restarts())
                if restarts.due is None and (code := child.exited()) is not None:
                    delay = restarts.exited(exit_text(code), now=now, up_since=child.started_at)
                    self.progress(
                        f"{child.name} (pid {child.pid}) {restarts.last_exit}; restarting in "
                        f"{delay:g} s\n{child.log_tail(5)}"
                    )
                    on_change()
                elif restarts.due is not None and now >= restarts.due:
                    self._restart(child, restarts)
                    on_change()
            time.sleep(interval)

    def _restart(self, child: Child, restarts: Restarts) -> None:
        # Ctrl-C waits until the new process is recorded in `child`, so the stop callbacks
        # (which stop child.process) can never miss one that was just started.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            child.start()
            restarts.restarted()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.progress(f"restarted {child.name} (pid {child.pid}, restart {restarts.count})")

    def report(self) -> dict[str, dict[str, Any]]:
        """Each child's PID, restarts and last exit, as `meshmart status` and the console show."""
        report = {}
        for child in self.children:
            restarts = self._restarts.get(child.name, Restarts())
            report[child.name] = {
                "pid": child.pid,
                "restarts": restarts.count,
                "last_exit": restarts.last_exit,
                "state": "running" if restarts.due is None else "restarting",
            }
        return report

    def close(self) -> None:
        self._stack.close()


def _wait_for_all(futures: Sequence[concurrent.futures.Future[Any]]) -> None:
    """Until every start has finished, even through Ctrl-C: a server that a thread starts
    after the stop callbacks ran would be left running. The first signal is raised after."""
    interrupted: BaseException | None = None
    while True:
        try:
            concurrent.futures.wait(futures)
            break
        except BaseException as exc:  # the signal handler's exception (Ctrl-C, SIGTERM)
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted
