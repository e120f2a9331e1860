"""Start and stop a local llama.cpp server (see serve.py) on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalServer:
    """`with LocalServer(model_path) as base_url:` a llama.cpp server for the block."""

    def __init__(self, model_path: Path, n_threads: int = 2, n_ctx: int = 2048, alias: str | None = None,
                 host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 180.0,
                 library_logprobs: bool = False):
        self.model_path, self.n_threads, self.n_ctx, self.alias = Path(model_path), n_threads, n_ctx, alias
        self.library_logprobs = library_logprobs  # the slower path (serve.py), for benchmarks
        self.host, self.port, self.startup_timeout = host, port, startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _log_tail(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-3000:]

    def start(self) -> str:
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise RuntimeError("llama-cpp-python[server] is not installed: run `make setup` "
                               "(or CMAKE_ARGS='-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF' pip install 'llama-cpp-python[server]')") from None
        self.port = self.port or free_port(self.host)
        self._log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "textclf.approaches.llm.serve", "--model", str(self.model_path),
               "--host", self.host, "--port", str(self.port), "--n_threads", str(self.n_threads), "--n_ctx", str(self.n_ctx)]
        if self.alias:
            cmd += ["--model_alias", self.alias]
        if self.library_logprobs:
            cmd += ["--library_logprobs"]
        # llama.cpp's OpenMP threads spin while waiting for each other. Spinning without
        # bound (OMP_WAIT_POLICY=active, or libgomp's default on a crowded CPU) starves the
        # client and other jobs: 5-10x slower reviews were seen on a shared machine. Not
        # spinning at all (passive) costs a wake-up per op: 4.2-4.8 reviews/s against 5.2-5.4
        # with a short spin (GOMP_SPINCOUNT=10000), Qwen 0.5B on 2 idle cores; equal with a
        # core busy. A user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT wins.
        env = dict(os.environ)
        if "OMP_WAIT_POLICY" not in env:
            env.setdefault("GOMP_SPINCOUNT", "10000")
        log.info("Starting llama.cpp server on %s (%s)", self.base_url, self.model_path.name)
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        return self.base_url
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer within {self.startup_timeout}s:\n{self._log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
