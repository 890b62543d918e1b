"""A real Airflow deployment on this machine, process by process, for integration tests and benches.

``dag.test()`` runs triggers inline, one at a time, and hides the scheduler; what a catalog team
runs at night is separate processes sharing a metadata database. :class:`AirflowStack` starts
exactly that, each process its own ``airflow ...`` command::

    with AirflowStack(home, dags_folder, database_url) as stack:   # a fresh PostgreSQL database
        stack.start(triggerers=1)                   # api-server, scheduler, dag-processor, triggerer
        run_id = stack.trigger("nightly_catalog_refresh", conf={...})
        stack.wait_for_run("nightly_catalog_refresh", run_id, timeout_s=600)
        stack.kill("triggerer-1")                   # kill -9, as a lost machine would
        stack.start_triggerer()                     # a new one takes over the triggers

``executor="CeleryExecutor"`` with ``celery_workers=2`` runs the Celery deployment instead (needs
``apache-airflow-providers-celery`` and a broker URL). SQLite is refused: Airflow's lab showed
"database is locked" kill the scheduler, triggerer and dag-processor at 30 concurrent deferrals.
The sandbox of the vendors can run as one more process (:meth:`start_sandbox`).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from airflow_bgreplace.sandbox.server import SandboxClient

#: Settings that make a small machine behave like a deployment sized for the test, not a laptop
#: default: mapped tasks past 1,024, more than 16 tasks of a DAG at once, a dead worker noticed in
#: seconds rather than minutes, triggers of a dead triggerer re-assigned quickly.
DEFAULT_CONFIG: dict[str, str] = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    # Only the runs a test or bench triggers: no cron run of a freshly unpaused nightly DAG.
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "100000",
    "AIRFLOW__CORE__MAX_MAP_LENGTH": "200000",
    "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "16",
    "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "512",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__CAPACITY": "20000",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
}


#: The environment variable :func:`stack_hostname` reads.
HOSTNAME_ENV = "BGREPLACE_STACK_HOSTNAME"


def stack_hostname() -> str:
    """``[core] hostname_callable`` of the stack's Celery workers: the name in ``BGREPLACE_STACK_HOSTNAME``.

    Every process of the stack runs on this one machine; a name per worker makes
    ``task_instance.hostname`` say which worker ran a task, as separate machines would.
    """
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_postgres_database(server_url: str, prefix: str = "bgreplace_stack") -> Iterator[str]:
    """A new, empty database on the server of ``server_url``, dropped afterwards (its URL).

    A database rather than a schema: Airflow's migrations create types and extensions that are
    easiest to throw away whole.
    """
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class AirflowStack:
    """Airflow as separate processes on one metadata database, started and stopped by the caller.

    :param home: ``AIRFLOW_HOME`` (logs, config) — a fresh folder per stack.
    :param dags_folder: the DAG files to serve.
    :param database_url: SQLAlchemy URL of the metadata database (PostgreSQL).
    :param executor: ``LocalExecutor`` (default) or ``CeleryExecutor``.
    :param parallelism: ``[core] parallelism``: LocalExecutor's worker processes.
    :param env: more environment for every process (connections, ``AIRFLOW__BGREPLACE__*``...).
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        database_url: str,
        *,
        executor: str = "LocalExecutor",
        parallelism: int = 16,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if database_url.startswith("sqlite"):
            raise ValueError("AirflowStack needs PostgreSQL: SQLite locks up under concurrent deferrals")
        self.home = Path(home)
        self.dags_folder = Path(dags_folder)
        self.database_url = database_url
        self.executor = executor
        self.api_port = free_port()
        self.processes: dict[str, ManagedProcess] = {}
        self._bin = Path(sys.executable).parent
        self.env = self._environment(parallelism, env or {})
        self._engine: Any = None

    # -- environment -----------------------------------------------------------------------------------
    def _environment(self, parallelism: int, extra: Mapping[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        from cryptography.fernet import Fernet

        env.update(DEFAULT_CONFIG)
        env.update(
            {
                # Children of `airflow` (task runners, triggerer subprocesses) find the same venv.
                "PATH": f"{self._bin}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                # psycopg 3 is async too: no asyncpg needed beside it.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.database_url,
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                # Every process must share these: trigger kwargs are Fernet-encrypted in the DB,
                # and the scheduler signs the tokens that workers present to the api-server.
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__BGREPLACE__DATABASE_URL": extra.get("AIRFLOW__BGREPLACE__DATABASE_URL", self.database_url),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    # -- processes -------------------------------------------------------------------------------------
    def run_cli(self, *args: str, timeout_s: float = 180.0) -> str:
        """One ``airflow`` CLI command to the end (the CLI talks to the metadata DB directly)."""
        done = subprocess.run(
            [str(self._bin / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self.home,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout

    def spawn(self, name: str, args: list[str], *, extra_env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start a long-running process in its own session, so that :meth:`kill` takes its children too."""
        if name in self.processes and self.processes[name].alive():
            raise RuntimeError(f"{name} is already running")
        logs = self.home / "process-logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            args,
            env={**self.env, **(extra_env or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.home,
            start_new_session=True,
        )
        process = ManagedProcess(name, args, popen, log_path, log_file)
        self.processes[name] = process
        return process

    def spawn_airflow(self, name: str, *args: str) -> ManagedProcess:
        return self.spawn(name, [str(self._bin / "airflow"), *args])

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.run_cli("db", "migrate", timeout_s=300)

    def start(
        self,
        *,
        triggerers: int = 1,
        celery_workers: int = 0,
        celery_concurrency: int = 8,
        api_workers: int = 2,
        timeout_s: float = 120.0,
    ) -> None:
        """Migrate, serialize the DAGs, then start every process and wait until each is up."""
        self.migrate()
        self.run_cli("dags", "reserialize", timeout_s=300)
        self.spawn_airflow("api-server", "api-server", "--port", str(self.api_port), "--workers", str(api_workers))
        self.wait_for_http(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout_s)
        self.spawn_airflow("scheduler", "scheduler")
        self.spawn_airflow("dag-processor", "dag-processor")
        for _ in range(triggerers):
            self.start_triggerer()
        for index in range(1, celery_workers + 1):
            self.start_celery_worker(index, concurrency=celery_concurrency)
        self.wait_for_jobs(timeout_s)
        if celery_workers:
            self.wait_for_celery_workers([f"worker{index}" for index in range(1, celery_workers + 1)], timeout_s)

    def start_celery_worker(self, index: int, *, concurrency: int = 8) -> ManagedProcess:
        """``airflow celery worker`` named ``worker<index>``: its Celery node is ``worker<index>@<host>``
        and the task instances it runs record ``worker<index>`` as their hostname."""
        name = f"worker{index}"
        return self.spawn(
            f"celery-worker-{index}",
            [
                str(self._bin / "airflow"),
                "celery",
                "worker",
                "--concurrency",
                str(concurrency),
                "--celery-hostname",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
                # All workers share this machine and AIRFLOW_HOME: the api-server reads task logs
                # from the files, and a second log server would only fight the first for its port.
                "--skip-serve-logs",
            ],
            extra_env={
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.stack_hostname",
                HOSTNAME_ENV: name,
            },
        )

    def celery_app(self) -> Any:
        """A Celery app on the stack's broker (for ``control.ping``, ``control.inspect``...)."""
        from celery import Celery

        broker = self.env.get("AIRFLOW__CELERY__BROKER_URL")
        if not broker:
            raise RuntimeError("CeleryExecutor needs AIRFLOW__CELERY__BROKER_URL in the stack's env")
        return Celery(broker=broker)

    def wait_for_celery_workers(self, names: list[str], timeout_s: float) -> None:
        """Until every named worker answers a broadcast ping (so it consumes the queue)."""
        app = self.celery_app()
        deadline = time.monotonic() + timeout_s
        answered: set[str] = set()
        try:
            while time.monotonic() < deadline:
                self.check_alive()
                for reply in app.control.ping(timeout=1.0) or []:
                    answered.update(node.split("@", 1)[0] for node in reply)
                if answered.issuperset(names):
                    return
        finally:
            app.close()
        raise TimeoutError(f"Celery workers {sorted(set(names) - answered)} not answering after {timeout_s:.0f} s")

    def start_triggerer(self) -> ManagedProcess:
        index = 1 + sum(1 for name in self.processes if name.startswith("triggerer-"))
        return self.spawn_airflow(f"triggerer-{index}", "triggerer")

    def wait_for_http(self, url: str, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2.0, trust_env=False).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{url} not up after {timeout_s:.0f} s")

    def wait_for_jobs(self, timeout_s: float) -> None:
        """Until the scheduler and every live triggerer have heartbeated in the ``job`` table."""
        wanted = Counter(
            "TriggererJob" if name.startswith("triggerer-") else "SchedulerJob"
            for name, process in self.processes.items()
            if process.alive() and (name.startswith("triggerer-") or name == "scheduler")
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            rows = self.query(
                "SELECT job_type, count(*) FROM job WHERE state = 'running' "
                "AND latest_heartbeat > now() - interval '30 seconds' GROUP BY job_type"
            )
            running = {str(job_type): int(count) for job_type, count in rows}
            if all(running.get(job_type, 0) >= count for job_type, count in wanted.items()):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Airflow jobs not running after {timeout_s:.0f} s: wanted {dict(wanted)}")

    def check_alive(self) -> None:
        for process in self.processes.values():
            if process.popen.returncode is None and not process.alive():
                raise RuntimeError(f"{process.name} exited ({process.popen.returncode}):\n{process.log_tail()}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and everything it started (its session), e.g. ``kill -9`` the triggerer."""
        process = self.processes[name]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        if sig == signal.SIGKILL:
            process.popen.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every process group, then SIGKILL what is left."""
        for process in reversed(list(self.processes.values())):
            if process.alive():
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group: LocalExecutor workers and task runners may outlive their parent.
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.log_file.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> AirflowStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- the vendors' sandbox as one more process ---------------------------------------------------
    def start_sandbox(self, *flags: str, timeout_s: float = 30.0) -> SandboxClient:
        """``bgreplace-sandbox`` on a free port (its own process, so it never competes for our GIL)."""
        port = free_port()
        self.spawn("sandbox", [str(self._bin / "bgreplace-sandbox"), "--port", str(port), *flags])
        client = SandboxClient(f"http://127.0.0.1:{port}")
        self.wait_for_http(f"{client.base_url}/_sandbox/health", timeout_s)
        return client

    # -- DAG runs --------------------------------------------------------------------------------------
    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        run_id = run_id or f"manual__{uuid.uuid4().hex[:12]}"
        self.run_cli("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(dict(conf or {})))
        return run_id

    def query(self, sql: str, **params: Any) -> list[Any]:
        import sqlalchemy as sa

        if self._engine is None:
            self._engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)
        with self._engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id)
        return str(rows[0][0]) if rows else None

    def task_state_counts(self, dag_id: str, run_id: str) -> Counter[str]:
        rows = self.query(
            "SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id = :d AND run_id = :r GROUP BY 1",
            d=dag_id,
            r=run_id,
        )
        return Counter({str(state): int(count) for state, count in rows})

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout_s: float, *, poll_s: float = 2.0, on_poll: Any = None
    ) -> str:
        """Wait for the run to end; returns its state. ``on_poll(counts)`` sees task-state counts."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            state = self.run_state(dag_id, run_id)
            if on_poll is not None:
                on_poll(self.task_state_counts(dag_id, run_id))
            if state in ("success", "failed"):
                return state
            time.sleep(poll_s)
        raise TimeoutError(
            f"{dag_id} {run_id} still {self.run_state(dag_id, run_id)} after {timeout_s:.0f} s: "
            f"{dict(self.task_state_counts(dag_id, run_id))}"
        )

    def task_log_files(self) -> list[Path]:
        return sorted(p for p in (self.home / "logs").rglob("*") if p.is_file())
