"""A real multi-node Ray cluster on loopback for tests and benchmarks: `ray start --head` plus `ray start --address`
workers, each with its own ports, all under one temp dir, and stopped by killing exactly the processes that live
under that dir (`ray stop` would stop every Ray cluster on the machine)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PORTS_PER_NODE = 40


def _free_base(count: int) -> int:
    """A run of `count` free TCP ports in an unusual range."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        base = rng.randrange(41000, 52000 - count)
        ok = True
        for p in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range for a Ray cluster")


class LocalRayCluster:
    def __init__(
        self, workers: int = 1, cpus_per_node: int = 1, head_cpus: int | None = None, token: str | None = None
    ) -> None:
        """`token`: the cluster's auth token (one process that joins several clusters in turn must reuse one:
        Ray reads it once per process)."""
        self.temp_dir = Path(tempfile.mkdtemp(prefix="psray-", dir="/tmp"))  # short: Ray's socket paths have a limit
        self.base = _free_base(PORTS_PER_NODE * (workers + 1))
        self.address = f"127.0.0.1:{self.base}"
        (self.temp_dir / "auth_token").write_text(token or secrets.token_hex(32))
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.temp_dir / "auth_token"),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.nodes = 0
        self._start(head=True, cpus=cpus_per_node if head_cpus is None else head_cpus)
        for _ in range(workers):
            self._start(head=False, cpus=cpus_per_node)

    def _start(self, *, head: bool, cpus: int) -> None:
        b = self.base + PORTS_PER_NODE * self.nodes
        ray = str(Path(sys.executable).with_name("ray"))
        cmd = [ray, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus)]
        cmd += ["--temp-dir", str(self.temp_dir)]
        cmd += ["--disable-usage-stats", "--object-store-memory", str(150 * 2**20), "--log-style", "record"]
        cmd += ["--node-manager-port", str(b + 1), "--object-manager-port", str(b + 2)]
        cmd += ["--dashboard-agent-listen-port", str(b + 3), "--dashboard-agent-grpc-port", str(b + 4)]
        cmd += ["--runtime-env-agent-port", str(b + 5), "--metrics-export-port", str(b + 6)]
        cmd += ["--min-worker-port", str(b + 10), "--max-worker-port", str(b + PORTS_PER_NODE - 1)]
        if head:
            cmd += ["--head", "--port", str(self.base), "--include-dashboard", "false"]
        else:
            cmd += ["--address", self.address]
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        self.nodes += 1

    def wait_for_nodes(self, timeout: float = 60) -> None:
        """Block until every node has registered (a worker's `ray start` returns before that)."""
        code = "import ray; ray.init(address='%s', logging_level='ERROR')\n"
        code += "print(len([n for n in ray.nodes() if n['Alive']]))"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(
                [sys.executable, "-c", code % self.address], env=self.env, capture_output=True, text=True, timeout=60
            )
            if out.stdout.strip().splitlines()[-1:] == [str(self.nodes)]:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster at {self.address} did not get {self.nodes} nodes")

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: those naming our temp dir, and their descendants."""
        me, found = os.getpid(), {}
        for p in psutil.process_iter(["cmdline"]):
            try:
                if p.pid != me and any(str(self.temp_dir) in a for a in p.info["cmdline"] or ()):
                    found[p.pid] = p
                    found.update((c.pid, c) for c in p.children(recursive=True))
            except psutil.Error:
                continue
        return list(found.values())

    def stop(self) -> None:
        procs = self.processes()
        for p in procs:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=3)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
