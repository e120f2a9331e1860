"""Start and stop a local llama.cpp server (see server_app.py) on 127.0.0.1.

The child gets the environment without secrets; it is ready when /v1/models lists the
alias given to it (not whatever answers on the port); a port taken between picking it and
binding it is picked again; its log lives in LOG_DIR, and logs left by killed runs are
removed at the next start; it is given this process's pid and exits when that is gone."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

LOG_DIR = Path(tempfile.gettempdir()) / "textclf-llama-server"
# Environment variables the server does not get: it needs no credential, and a model or a
# library that reads or logs its environment would see them.
SECRET_NAME = re.compile("KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
BIND_TRIES = 3


def child_env() -> dict[str, str]:
    """This process's environment minus every variable whose name contains KEY, TOKEN,
    SECRET or PASSWORD (any case): API keys are not passed to the llama.cpp server."""
    return {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_logs(folder: Path = LOG_DIR) -> None:
    """Remove the logs of servers whose run is gone (named <run's pid>-<port>.log): a run
    killed with SIGKILL cannot remove its own."""
    for f in folder.glob("*-*.log"):
        pid = f.name.split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            f.unlink(missing_ok=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    """The server could not bind its port (another process took it after we picked it)."""


class LocalServer:
    """`with LocalServer(model_path) as base_url:` a llama.cpp server for the block."""

    def __init__(self, model_path: Path, n_threads: int = 2, n_ctx: int = 2048, alias: str | None = None,
                 host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 180.0,
                 library_logprobs: bool = False, n_gpu_layers: int = 0):
        self.model_path, self.n_threads, self.n_ctx, self.alias = Path(model_path), n_threads, n_ctx, alias
        self.n_gpu_layers = n_gpu_layers  # layers offloaded to a GPU (needs a CUDA build of llama-cpp-python)
        self.library_logprobs = library_logprobs  # the slower path (server_app.py), for benchmarks
        self.host, self.port, self.startup_timeout = host, port, startup_timeout
        self.proc: subprocess.Popen | None = None
        self._log = None

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
                               "(or CMAKE_ARGS='-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF' "
                               "pip install 'llama-cpp-python[server]')") from None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        clean_logs()
        # What /v1/models must list: tells our server from another one on the port.
        self.expect = self.alias or f"textclf-{self.model_path.name}-{secrets.token_hex(6)}"
        pick = self.port is None  # a port we picked may be taken before the child binds it: pick again
        for _ in range(BIND_TRIES if pick else 1):
            if pick:
                self.port = free_port(self.host)
            try:
                return self._start_once()
            except PortTaken as exc:
                if not pick:
                    raise RuntimeError(f"llama.cpp server: port {self.port} is in use:\n{exc}") from None
                log.warning("llama.cpp server: port %d was taken before it could bind it; trying another", self.port)
        raise RuntimeError(f"llama.cpp server: {BIND_TRIES} ports in a row were taken before it could bind them")

    def _start_once(self) -> str:
        self._log = (LOG_DIR / f"{os.getpid()}-{self.port}.log").open("w+")
        cmd = [sys.executable, "-m", "textclf.approaches.llm.server_app", "--model", str(self.model_path),
               "--host", self.host, "--port", str(self.port), "--n_threads", str(self.n_threads),
               "--n_ctx", str(self.n_ctx), "--model_alias", self.expect, "--n_gpu_layers", str(self.n_gpu_layers),
               "--parent_pid", str(os.getpid())]  # the child stops when this pid is gone, even during its imports
        if self.library_logprobs:
            cmd += ["--library_logprobs"]
        # llama.cpp's OpenMP threads spin while waiting for each other. Spinning without
        # bound (OMP_WAIT_POLICY=active, or libgomp's default on a crowded CPU) starves the
        # client and other jobs: 5-10x slower reviews were seen on a shared machine. Not
        # spinning at all (passive) costs a wake-up per op: 4.2-4.8 reviews/s against 5.2-5.4
        # with a short spin (GOMP_SPINCOUNT=10000), Qwen 0.5B on 2 idle cores; equal with a
        # core busy. A user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT wins.
        env = child_env()  # no API keys, tokens, secrets or passwords: the server needs none
        if "OMP_WAIT_POLICY" not in env:
            env.setdefault("GOMP_SPINCOUNT", "10000")
        log.info("Starting llama.cpp server on %s (%s)", self.base_url, self.model_path.name)
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self._log_tail()
                code = self.proc.returncode
                self.stop()
                if "address already in use" in tail.lower():
                    raise PortTaken(tail)
                raise RuntimeError(f"llama.cpp server exited with {code}:\n{tail}")
            if self._ours():
                return self.base_url
            time.sleep(0.25)
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer within {self.startup_timeout}s:\n{tail}")

    def _ours(self) -> bool:
        """Does the port answer /v1/models with the alias given to our server?"""
        try:
            with urllib.request.urlopen(f"{self.base_url}/v1/models", timeout=2) as r:
                ids = [m.get("id") for m in json.loads(r.read()).get("data") or []] if r.status == 200 else []
        except (OSError, ValueError, AttributeError):
            return False
        return self.expect in ids

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
