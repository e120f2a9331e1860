"""A real two-node Ray cluster on this machine, for tests/test_ray_cluster.py and
scripts/bench_ray_cluster.py: `ray start --head` and a second `ray start --address`, each
with its own raylet and --temp-dir, all on 127.0.0.1, 1 CPU each.

Teardown never runs a bare `ray stop`: it stops every Ray process of the user on the
machine (other sessions, a benchmark's engine=ray run). `stop()` kills only the processes
whose command line names this cluster's temp dirs or GCS address, then their children."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).parent / "ray")
# Node loss is noticed after `threshold` health checks in a row fail (Ray's default takes about
# 15 s). A SIGKILLed raylet refuses the connection at once, so each check fails right away and
# the node is declared dead after about period x threshold = 5 s. The timeout only bounds a
# raylet that is alive but slow: at 1 s (x3) a loaded 2-core machine could declare a live node
# dead (and a dead head takes every actor the driver owns with it). 5 s x 5 needs ~25 s of
# silence for that. (The failure CI saw was another one: see pyproject.toml's addopts.)
FAST_HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "5000",
                      "RAY_health_check_failure_threshold": "5"}
# Each node's object store (Ray's default: 30% of the machine's memory per node, so 60% for
# two): the test moves about a megabyte, and memory left to the rest of the suite's machine
# keeps the raylets (and the GCS health checks) from stalling on swap.
OBJECT_STORE_BYTES = 200 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TwoNodeCluster:
    def __init__(self, base: Path, cpus_per_node: int = 1):
        # Ray's socket paths must stay under 107 bytes: keep the temp dirs short.
        self.base = Path(base)
        self.head_dir, self.worker_dir = self.base / "h", self.base / "w"
        self.cpus = cpus_per_node
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.started_at = time.time()
        self.log: list[str] = []

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        # Token auth off: this Ray enables it for `ray start --head` but not for the second node
        # or the driver (a loopback-only cluster, gone with the test).
        env.update(FAST_HEALTH_CHECKS, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
                   PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
        return env

    def _ray_start(self, args: list[str]) -> None:
        proc = subprocess.run([RAY, "start", *args], env=self._env(), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=180)
        self.log.append(proc.stdout)
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"`ray start {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout[-4000:]}")

    def _node_args(self, temp_dir: Path) -> list[str]:
        # Every port a second node on the same host would otherwise share with the first one.
        return ["--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus), "--num-gpus", "0",
                "--temp-dir", str(temp_dir), "--disable-usage-stats", "--object-store-memory", str(OBJECT_STORE_BYTES),
                "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]

    def start(self) -> TwoNodeCluster:
        self.head_dir.mkdir(parents=True, exist_ok=True)
        self.worker_dir.mkdir(parents=True, exist_ok=True)
        # With Ray Client's dependency (grpc) installed, the head starts a client server on port
        # 10001, as any other Ray head on the machine does: a port of its own. Without it, Ray
        # starts none and refuses the option (ray/scripts/scripts.py: "has port, no client").
        client = ["--ray-client-server-port", str(free_port())] if importlib.util.find_spec("grpc") else []
        self._ray_start(["--head", "--port", str(self.port), "--include-dashboard=false", *client,
                         *self._node_args(self.head_dir)])
        self._ray_start(["--address", self.address, *self._node_args(self.worker_dir)])
        try:
            self.wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def state(self) -> dict:
        """{nodes: [{id, alive, raylet_socket, cpus}], cpus, cpus_available} as the GCS sees
        them, from a separate process (the caller may hold no Ray connection, or one to another
        runtime). `cpus_available` is the GCS's resource view, the one actors are placed by."""
        code = (f"import json, ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); "
                "print(json.dumps({'nodes': [{'id': n['NodeID'], 'alive': n['Alive'], 'raylet_socket': n['RayletSocketName'],"
                " 'cpus': n['Resources'].get('CPU', 0)} for n in ray.nodes()],"
                " 'cpus': ray.cluster_resources().get('CPU', 0), 'cpus_available': ray.available_resources().get('CPU', 0)}))")
        proc = subprocess.run([sys.executable, "-c", code], env=self._env(), text=True, capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"reading the cluster's state failed:\n{proc.stderr[-3000:]}")
        import json

        return json.loads(proc.stdout.strip().splitlines()[-1])

    def nodes(self) -> list[dict]:
        """The cluster's nodes as the GCS sees them (see state())."""
        return self.state()["nodes"]

    def wait_nodes(self, alive: int, timeout: float = 120) -> list[dict]:
        """Until exactly `alive` nodes are alive (a killed node takes up to ~30 s to be
        declared dead: FAST_HEALTH_CHECKS)."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.nodes()
            if sum(n["alive"] for n in nodes) == alive:
                return nodes
            if time.monotonic() > deadline:
                raise RuntimeError(f"expected {alive} alive nodes, got {nodes}")
            time.sleep(1)

    def wait_ready(self, timeout: float = 120) -> dict:
        """Until both nodes are alive, each with its CPUs, and every CPU is free in the GCS's
        resource view. A node counts as alive as soon as it registers, before its resources
        are in the view the actors are placed by; and after a run, the finished job's actors
        give their CPUs back only once they are gone. A run started earlier would find one
        1-CPU node short: its second actor waits (and a kill meant for a running actor can
        land on one that never started)."""
        deadline = time.monotonic() + timeout
        want = 2 * self.cpus
        while True:
            st = self.state()
            alive = [n for n in st["nodes"] if n["alive"]]
            if (len(alive) == 2 and all(abs(n["cpus"] - self.cpus) < 1e-6 for n in alive)
                    and abs(st["cpus"] - want) < 1e-6 and abs(st["cpus_available"] - want) < 1e-6):
                return st
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster was not ready (2 alive nodes, {want} CPUs, all free) "
                                   f"within {timeout}s: {st}")
            time.sleep(1)

    def _ours(self) -> list[psutil.Process]:
        """This cluster's processes: their command line names one of its temp dirs or its GCS
        address (raylets, GCS, agents, workers, log monitors), and their children."""
        marks = (str(self.head_dir), str(self.worker_dir), self.address)
        found: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["pid", "cmdline", "create_time"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                if p.info["create_time"] >= self.started_at - 1 and any(m in cmd for m in marks):
                    found[p.pid] = p
                    for c in p.children(recursive=True):
                        found[c.pid] = c
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        found.pop(os.getpid(), None)
        return list(found.values())

    def raylet(self, temp_dir: Path) -> psutil.Process:
        """The raylet process of the node started with `temp_dir`."""
        hits = [p for p in self._ours() if p.name() == "raylet" and str(temp_dir) in " ".join(p.cmdline())]
        if len(hits) != 1:
            raise RuntimeError(f"expected one raylet under {temp_dir}, found {[p.pid for p in hits]}")
        return hits[0]

    def kill_worker_node(self) -> int:
        """SIGKILL the second node's raylet (its workers die with it); returns its pid."""
        p = self.raylet(self.worker_dir)
        p.send_signal(signal.SIGKILL)
        return p.pid

    def stop(self) -> None:
        """`ray stop --force`, for this cluster only (see the module's docstring)."""
        for p in self._ours():
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(self._ours(), timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> TwoNodeCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- the embed path on the cluster

ROOT = Path(__file__).resolve().parents[1]


def review_texts(n: int) -> list[str]:
    """The first n rotten_tomatoes test reviews (the data mirror beside the repository)."""
    import json

    rows = (ROOT.parent / "shared/data/rotten_tomatoes/test.jsonl").read_text(encoding="utf-8").split("\n")
    return [json.loads(r)["text"] for r in rows if r.strip()][:n]


def minilm_spec(batch_size: int = 16) -> dict:
    """The CI profile's embedder (conf/embedder/minilm.yaml), on its default backend."""
    import yaml

    return {**yaml.safe_load((ROOT / "conf/embedder/minilm.yaml").read_text()), "batch_size": batch_size}


def engine_for(cluster: TwoNodeCluster) -> dict:
    """engine=ray pointed at the cluster by its `address` setting: one 1-CPU actor per node."""
    return {"name": "ray", "address": cluster.address, "actors": 2, "cpus_per_actor": 1}


def _is_map_actor(p: psutil.Process) -> bool:
    return "MapWorker" in p.name() or "_Actor" in " ".join(p.cmdline())


def _actor_started(cluster: TwoNodeCluster, since: float, timeout: float) -> bool:
    """Wait until the worker node runs one of Ray Data's map actors started at or after
    `since` (time.time()): a map actor of an earlier run, still on its way out, is not this
    run's. (psutil's create_time can be up to a second early: the boot time it adds is whole
    seconds.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            raylet = cluster.raylet(cluster.worker_dir)
            for c in raylet.children(recursive=True):
                try:
                    if c.create_time() >= since - 1.0 and _is_map_actor(c):
                        return True
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
        except (psutil.NoSuchProcess, RuntimeError):
            pass
        time.sleep(0.1)
    return False


def encode_killing_worker_node(cluster: TwoNodeCluster, embedder, texts: list[str], after: float = 2.0,
                               timeout: float = 600) -> dict:
    """Run embedder.encode on the cluster and SIGKILL the worker node's raylet `after` seconds
    after its map actor starts. Returns {vectors | error, wall_seconds, killed_pid, in_flight_at_kill}."""
    import threading

    # An earlier run's actors give their CPUs back only once they are gone (see wait_ready):
    # start from an idle cluster, so both of this run's actors can be placed, one per node.
    cluster.wait_ready()
    result: dict = {}

    def run() -> None:
        start = time.perf_counter()
        try:
            result["vectors"] = embedder.encode(texts, progress=False, engine=engine_for(cluster))
        except Exception as exc:  # noqa: BLE001 - recorded: the caller checks which error it was
            result["error"] = f"{type(exc).__name__}: {exc}"
        result["wall_seconds"] = round(time.perf_counter() - start, 3)

    since = time.time()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    if not _actor_started(cluster, since, timeout=120):
        t.join(timeout)
        raise RuntimeError(f"no map actor ever started on the worker node: {result.get('error')}")
    time.sleep(after)
    result["in_flight_at_kill"] = t.is_alive()
    result["killed_pid"] = cluster.kill_worker_node()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"the run neither finished nor failed within {timeout}s of losing the worker node")
    return result
