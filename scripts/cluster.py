"""Run the docker-compose topology as local processes: a database, one redis-server and N `python -m app`
instances.

    make cluster                                                 # redis 6390, instances on 8001-8003
    make cluster CLUSTER_PORTS=9001,9002 REDIS_PORT=6397
    .venv/bin/python scripts/cluster.py --redis-port 6391 --ports 9001,9002
    make cluster REDIS_CLUSTER=1                                 # a 3-master Redis Cluster on 6390-6392

With `--redis-cluster` (make: `REDIS_CLUSTER=1`) Redis is a Redis Cluster of three masters on `--redis-port`
and the two ports after it (`scripts/redis_cluster.py`), and the instances get `redis+cluster://` URLs.

The database (conversations, messages, votes, suspended runs): `DATABASE_URL` when set; else a private
PostgreSQL server when one is installed (Debian's `postgresql`: its data in `.cluster/postgres`, port 6391 or
`--pg-port`; as root it runs as the `postgres` user); else one SQLite file, `.cluster/chatstream.db`, shared by
the instances. The schema is migrated once (`chatstream db upgrade`) before the instances start.

No load balancer: point clients at any instance (they share everything through Redis), e.g. start a chat
on 8001 and resume it on 8002. Failover: kill one instance by the pid printed at start (`kill -9 <pid>`);
the others keep serving, and this script reports the exit and keeps them running. It stops the whole
cluster (instances first, so they store what they hold, then Redis) on Ctrl-C or SIGTERM, when
redis-server or PostgreSQL exits, or when no instance is left. Logs and the data go to `.cluster/`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

ROOT = Path(__file__).resolve().parent.parent

EPILOG = """\
environment (the options win):
  CLUSTER_PORTS        instance ports, as --ports (make: CLUSTER_PORTS=...)
  CLUSTER_REDIS_PORT   redis-server port, as --redis-port (make: REDIS_PORT=...)
  CLUSTER_REDIS_CLUSTER  1: a 3-master Redis Cluster, as --redis-cluster (make: REDIS_CLUSTER=1)
  CLUSTER_PG_PORT      private PostgreSQL port, as --pg-port
  DATABASE_URL         a database of your own for the instances (no private PostgreSQL then)
  CLUSTER_DIR          logs and Redis data, as --dir
Every other variable (CHAT_*, provider keys) is passed on to the instances.
"""


class Stop(Exception):
    """Raised by the first SIGTERM/SIGINT: unwinds to the one place that stops the cluster."""


class Cluster:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.redis: subprocess.Popen[bytes] | None = None
        self.redis_nodes: list[subprocess.Popen[bytes]] = []
        """With --redis-cluster: the other masters (`redis` is the first)."""
        self.postgres: subprocess.Popen[bytes] | None = None
        self.instances: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def spawn(
        self, argv: list[str], log_name: str, env: dict[str, str] | None = None, user: str | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.state / log_name).open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches this script only, which stops the
            # instances before Redis (a terminal's SIGINT to the whole group would stop Redis first).
            return subprocess.Popen(  # noqa: S603 - our own argv
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,  # switched to before preexec_fn runs: the death signal survives it
                preexec_fn=_die_with_parent,  # safe: this script runs no threads
            )

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            raise Stop
        # A second signal while stopping: no more waiting.
        for proc in self._all():
            if proc.poll() is None:
                proc.kill()

    def _all(self) -> list[subprocess.Popen[bytes]]:
        redis = [*([self.redis] if self.redis is not None else []), *self.redis_nodes]
        return [*self.instances.values(), *(p for p in (self.postgres,) if p is not None), *redis]

    def stop(self) -> None:
        """Instances first (SIGTERM: they drain and write their final frames), then PostgreSQL and Redis; SIGKILL
        after a wait."""
        self.stopping = True
        grace = float(os.environ.get("CHAT_SHUTDOWN_GRACE_SECONDS") or 30) + 15
        _terminate(list(self.instances.values()), grace)
        if self.postgres is not None:
            _terminate([self.postgres], 10)
        if self.redis is not None:
            _terminate([self.redis, *self.redis_nodes], 10)

    def supervise(self) -> int:
        """Until Redis exits or no instance is left; an instance that exits is reported, the others go on."""
        assert self.redis is not None
        while True:
            code = next((c for c in (p.poll() for p in [self.redis, *self.redis_nodes]) if c is not None), None)
            if code is not None:
                print(f"redis-server exited with code {code}; stopping the cluster", file=sys.stderr, flush=True)
                return 1
            code = self.postgres.poll() if self.postgres is not None else None
            if code is not None:
                print(f"PostgreSQL exited with code {code}; stopping the cluster", file=sys.stderr, flush=True)
                return 1
            for port, proc in list(self.instances.items()):
                code = proc.poll()
                if code is not None:
                    del self.instances[port]
                    left = ", ".join(map(str, self.instances)) or "none"
                    print(
                        f"instance on {port} (pid {proc.pid}) exited with code {code}; still serving: {left}",
                        file=sys.stderr,
                        flush=True,
                    )
            if not self.instances:
                print("no instance left; stopping the cluster", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when this script dies, even by SIGKILL (Linux), so a killed
    script leaves no cluster behind (its own session keeps the terminal's signals from reaching it)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminate(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (the newest installed), or the ones on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).resolve().parent if on_path else None


def start_postgres(cluster: Cluster, port: int) -> str | None:
    """A private PostgreSQL on 127.0.0.1:`port`, data in `<dir>/postgres` (kept across runs); its URL, or None
    (with the reason on stderr) when it cannot run here."""
    binaries = postgres_bin()
    if binaries is None:
        return None
    user = None
    data = cluster.state / "postgres"
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            print("PostgreSQL: no `postgres` user to run it as root; using SQLite", file=sys.stderr, flush=True)
            return None
    if not (data / "PG_VERSION").exists():
        data.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            shutil.chown(data, user)
        init = [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        with (cluster.state / "postgres.log").open("ab") as log:
            done = subprocess.run(init, cwd=cluster.state, stdout=log, stderr=subprocess.STDOUT, user=user, check=False)  # noqa: S603
        if done.returncode != 0:
            print(f"PostgreSQL: initdb failed (see {cluster.state}/postgres.log); using SQLite", file=sys.stderr)
            shutil.rmtree(data, ignore_errors=True)
            return None
    argv = [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
    argv += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
    cluster.postgres = cluster.spawn(argv, "postgres.log", user=user)
    if not wait_port(port, cluster.postgres, 15):
        print(f"PostgreSQL did not start on {port} (see {cluster.state}/postgres.log)", file=sys.stderr, flush=True)
        return None
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"


def migrate(url: str, state: Path) -> bool:
    """`chatstream db upgrade` on `url`, once, before the instances start."""
    with (state / "migrate.log").open("ab") as log:
        done = subprocess.run(  # noqa: S603 - our own argv
            [sys.executable, "-m", "chatstream", "db", "upgrade", "--url", url],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=60,
        )
    return done.returncode == 0


def start_redis_cluster(cluster: Cluster, ports: list[int], state: Path, *, aof: bool) -> str | None:
    """Three masters of a Redis Cluster (`scripts/redis_cluster.py`), their logs `redis-<port>.log`; the URL
    for the instances, or None (reported) when the cluster did not come up."""
    sys.path.insert(0, str(ROOT))  # this file runs as a script: its sibling module, through the package
    from scripts import redis_cluster

    def spawn(argv: list[str], directory: Path) -> subprocess.Popen[bytes]:
        return cluster.spawn(argv, f"redis-{directory.name}.log")

    try:
        nodes = redis_cluster.start(ports, state / "redis-cluster", spawn=spawn, aof=aof)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"the Redis Cluster did not start: {exc}", file=sys.stderr)
        return None
    cluster.redis, cluster.redis_nodes = nodes[0], nodes[1:]
    return redis_cluster.url(ports)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        description="redis-server + N chat instances on 127.0.0.1 (failover: kill one, the others keep serving)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--redis-port", type=int, default=int(env.get("CLUSTER_REDIS_PORT") or 6390), help="default 6390"
    )
    parser.add_argument(
        "--ports",
        default=env.get("CLUSTER_PORTS") or "8001,8002,8003",
        help="comma-separated instance ports, default 8001,8002,8003",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path(env.get("CLUSTER_DIR") or ROOT / ".cluster"), help="default .cluster/"
    )
    parser.add_argument(
        "--pg-port", type=int, default=int(env.get("CLUSTER_PG_PORT") or 6391), help="private PostgreSQL, default 6391"
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when PostgreSQL is installed")
    parser.add_argument("--aof", action="store_true", help="enable Redis AOF persistence (as docker-compose)")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        default=env.get("CLUSTER_REDIS_CLUSTER", "") not in ("", "0", "false"),
        help="a 3-master Redis Cluster on --redis-port and the two ports after it",
    )
    args = parser.parse_args(argv)
    try:
        args.ports = [int(p) for p in args.ports.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--ports must be comma-separated port numbers, got {args.ports!r}")
    args.redis_ports = [args.redis_port + i for i in range(3 if args.redis_cluster else 1)]
    every = [*args.redis_ports, args.pg_port, *args.ports]
    if not args.ports or len(set(every)) != len(every) or not all(0 < p < 65536 for p in every):
        parser.error(
            f"need distinct ports from 1 to 65535, got redis {args.redis_port}, PostgreSQL {args.pg_port} "
            f"and instances {args.ports}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = shutil.which("redis-server")
    if server is None:
        print("error: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    busy = [p for p in (*args.redis_ports, *args.ports) if not port_free(p)]
    if busy:
        print(f"error: port {busy[0]} on 127.0.0.1 is already in use", file=sys.stderr)
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(args.dir)
    signal.signal(signal.SIGTERM, cluster.on_signal)
    signal.signal(signal.SIGINT, cluster.on_signal)
    try:
        if args.redis_cluster:
            redis_url = start_redis_cluster(cluster, args.redis_ports, args.dir, aof=args.aof)
            if redis_url is None:
                return 1
        else:
            redis_args = [server, "--port", str(args.redis_port), "--bind", "127.0.0.1", "--dir", str(args.dir)]
            redis_args += ["--save", "", "--appendonly", "yes" if args.aof else "no"]
            cluster.redis = cluster.spawn(redis_args, "redis.log")
            if not wait_port(args.redis_port, cluster.redis, 5):
                print(f"redis-server did not start on {args.redis_port} (see {args.dir}/redis.log)", file=sys.stderr)
                return 1
            redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
        database_url = os.environ.get("DATABASE_URL")
        if not database_url and not args.sqlite and port_free(args.pg_port):
            database_url = start_postgres(cluster, args.pg_port)
        database_url = database_url or f"sqlite+aiosqlite:///{(args.dir / 'chatstream.db').resolve()}"
        if not migrate(database_url, args.dir):
            print(f"the database migration failed (see {args.dir}/migrate.log)", file=sys.stderr)
            return 1
        for port in args.ports:
            env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": redis_url}
            env["DATABASE_URL"] = database_url
            cluster.instances[port] = cluster.spawn([sys.executable, "-m", "app"], f"app-{port}.log", env)
        for port, proc in cluster.instances.items():
            if not wait_healthy(port, proc, 30):
                print(f"instance on {port} is not healthy (see {args.dir}/app-{port}.log)", file=sys.stderr)
                return 1
        assert cluster.redis is not None
        print(f"redis: {redis_url}  pid {cluster.redis.pid}", flush=True)
        for port, node in zip(args.redis_ports[1:], cluster.redis_nodes, strict=True):
            print(f"redis node: 127.0.0.1:{port}  pid {node.pid}", flush=True)
        if cluster.postgres is not None:
            print(f"postgres: {database_url}  pid {cluster.postgres.pid}", flush=True)
        else:
            print(f"database: {database_url}", flush=True)
        for port, proc in cluster.instances.items():
            print(f"instance: http://127.0.0.1:{port}  pid {proc.pid}  (log {args.dir}/app-{port}.log)", flush=True)
        print("kill an instance's pid to see failover; Ctrl-C stops everything", flush=True)
        return cluster.supervise()
    except Stop:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
