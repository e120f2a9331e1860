"""Helpers for the chat-LLM tests: a fault-injecting OpenAI-style server on 127.0.0.1,
and a throwaway project folder whose stages run for real (no DVC)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from helpers import REPO


class FaultServer:
    """Answers POST /openai/v1/chat/completions like a chat model that says "positive"
    when the review contains "good" and "negative" otherwise, except for reviews tagged:
      [429]       first attempt: 429 with Retry-After: `retry_after` (default 1 s)
      [500]       first attempt: 500
      [slow]      first attempt: sleeps past the client's timeout
      [malformed] first attempt: 200 with a truncated JSON body
      [chatty]    always: text that is no label (unparseable, not a failure)
      [dead]      always: 503 (the row fails after all retries)
    With a json_schema response_format (Groq's structured output) the answer is
    {"label": ...}, except for [chatty] rows (a provider ignoring the constraint).
    Every attempt is logged (review text, status); `bodies` keeps each request body and
    `auth` each Authorization header."""

    def __init__(self, delay: float = 0.0, slow: float = 3.0, retry_after: str = "1"):
        self.delay, self.slow, self.retry_after = delay, slow, retry_after
        self.healed = False  # set True: [dead] rows answer normally
        self.attempts: list[tuple[str, int]] = []
        self.seen: Counter = Counter()
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/openai/v1/chat/completions":
                    return self._send(404, b'{"error": {"message": "not found"}}')
                text = body["messages"][-1]["content"]
                with outer.lock:
                    outer.bodies.append(body)
                    outer.auth.append(self.headers.get("Authorization"))
                    outer.seen[text] += 1
                    first = outer.seen[text] == 1
                status = 200
                if "[429]" in text and first:
                    status = 429
                elif "[500]" in text and first:
                    status = 500
                elif "[dead]" in text and not outer.healed:
                    status = 503
                with outer.lock:
                    outer.attempts.append((text, status))
                if status != 200:
                    return self._send(status, b'{"error": {"message": "injected"}}',
                                      {"Retry-After": outer.retry_after} if status == 429 else None)
                if "[slow]" in text and first:
                    time.sleep(outer.slow)
                if outer.delay:
                    time.sleep(outer.delay)
                if "[malformed]" in text and first:
                    return self._send(200, b'{"id": "x", "choices": [{"message": ')
                answer = "I think this movie is okay" if "[chatty]" in text else \
                    ("positive" if "good" in text else "negative")
                if (body.get("response_format") or {}).get("type") == "json_schema" and "[chatty]" not in text:
                    answer = json.dumps({"label": answer})
                reply = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                      "message": {"role": "assistant", "content": answer}}],
                         "usage": {"prompt_tokens": 20, "completion_tokens": 1, "total_tokens": 21}}
                self._send(200, json.dumps(reply).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def texts(self, status: int | None = None) -> list[str]:
        with self.lock:
            return [t for t, s in self.attempts if status is None or s == status]


PROMPTS = {"label_system": "One of: {labels}", "score_system": "", "user": "R: {text}"}


def llm_settings(raw: dict | None = None, **kw):
    """The llm group typed (settings.read) from a few keys: provider local and toy prompts unless given."""
    from textclf.approaches.llm.settings import read

    return read({"provider": "local", "prompts": PROMPTS, **(raw or {}), **kw})


def policy(**kw):
    """client.Policy with the llm group's defaults, `kw` replacing some."""
    from dataclasses import replace

    from textclf.approaches.llm import client

    return replace(client.Policy.from_settings(llm_settings()), **kw)


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_project(tmp: Path, test_texts: list[str], overrides: list[str]) -> Path:
    """A project folder (conf/ from the repo, params composed with `overrides`) over a
    small local dataset whose test split holds `test_texts`; labels: 'good' -> positive."""
    proj = tmp / "proj"
    shutil.copytree(REPO / "conf", proj / "conf")
    (proj / ".dvc").mkdir()  # compose looks for .dvc/hydra_plugins
    ds = tmp / "ds"
    lab = lambda t: int("good" in t)  # noqa: E731
    write_jsonl(ds / "train.jsonl", [{"text": f"train {i} {'good' if i % 2 else 'bad'}", "label": i % 2} for i in range(10)])
    write_jsonl(ds / "validation.jsonl", [{"text": f"val {i} {'good' if i % 2 else 'bad'}", "label": i % 2} for i in range(4)])
    write_jsonl(ds / "test.jsonl", [{"text": t, "label": lab(t)} for t in test_texts])
    from textclf.params import compose
    from textclf.stages import data as data_stage
    from textclf.stages import fit as fit_stage

    compose(proj, ["data.source=local", f"data.local_dir={ds}", "data.name=tiny", *overrides])
    in_process(proj, data_stage.main)
    in_process(proj, fit_stage.main, ["llm"])
    return proj


def in_process(proj: Path, main, argv: list[str] | None = None):
    """Run a stage's main() in this process with `proj` as the working directory
    (subprocesses cost seconds of imports each)."""
    old = Path.cwd()
    os.chdir(proj)
    try:
        return main(argv) if argv is not None else main()
    finally:
        os.chdir(old)


def env() -> dict:
    # The fake server is not Groq: its key comes from TEXTCLF_LLM_API_KEY (GROQ_API_KEY goes to Groq only).
    e = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1", GROQ_API_KEY="test-key-not-secret",
             TEXTCLF_LLM_API_KEY="test-key-not-secret")
    return e


def stage(proj: Path, module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=proj, env=env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {args} failed ({proc.returncode}):\n{proc.stdout[-5000:]}")
    return proc


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
