"""Helpers for the chat-LLM tests: a fault-injecting OpenAI-style server on 127.0.0.1,
and a throwaway project folder whose stages run for real (no DVC)."""

from __future__ import annotations

import json
import os
import random
import re
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
    With a `marker`, it answers the wrong label unless the system prompt contains the marker
    (a prompt that works and one that does not, for the selection at fit).
    Every attempt is logged (review text, status); `bodies` keeps each request body and
    `auth` each Authorization header."""

    def __init__(self, delay: float = 0.0, slow: float = 3.0, retry_after: str = "1",
                 words: tuple[str, str] = ("negative", "positive"), marker: str | None = None):
        self.delay, self.slow, self.retry_after = delay, slow, retry_after
        self.words = words  # what it answers for a bad / a good review
        self.marker = marker
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
                system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
                right = outer.marker is None or outer.marker in system
                answer = "I think this movie is okay" if "[chatty]" in text else \
                    outer.words[("good" in text) == right]
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


def make_project(tmp: Path, test_texts: list[str], overrides: list[str], val_texts: list[str] | None = None) -> Path:
    """A project folder (conf/ from the repo, params composed with `overrides`) over a
    small local dataset whose test split holds `test_texts` (and validation `val_texts`, else
    four rows); labels: 'good' -> positive."""
    proj = tmp / "proj"
    shutil.copytree(REPO / "conf", proj / "conf")
    (proj / ".dvc").mkdir()  # compose looks for .dvc/hydra_plugins
    ds = tmp / "ds"
    lab = lambda t: int("good" in t)  # noqa: E731
    write_jsonl(ds / "train.jsonl", [{"text": f"train {i} {'good' if i % 2 else 'bad'}", "label": i % 2} for i in range(10)])
    val_texts = val_texts or [f"val {i} {'good' if i % 2 else 'bad'}" for i in range(4)]
    write_jsonl(ds / "validation.jsonl", [{"text": t, "label": lab(t)} for t in val_texts])
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
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=proj, env=env(), encoding="utf-8",
                          errors="replace", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {args} failed ({proc.returncode}):\n{proc.stdout[-5000:]}")
    return proc


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:  # whatever the caller's locale; not splitlines(): U+2028
        return [json.loads(line) for line in fh]


# ---------------------------------------------------------------- a faulty provider at concurrency

FAULT_MIX = {"ok": 0.70, "429": 0.10, "503": 0.10, "hang": 0.05, "malformed": 0.05}
# The client's error kind (client.classify) each fault ends in; a reply that came too late
# for the client's timeout (a loaded machine) is a "timeout" whatever the server sent.
FAULT_KIND = {"429": "http_429", "503": "http_503", "hang": "timeout", "malformed": "malformed"}
ROW = re.compile(r"\brow (\d+)\b")


class FlakyProvider:
    """A Groq-compatible server (POST /openai/v1/chat/completions, structured output) on
    127.0.0.1 for reviews "row <id> good|bad", answering each attempt with a fault drawn from
    `mix` by a generator seeded with (seed, review, attempt number): the same row's n-th
    attempt gets the same fault whatever the order requests arrive in at concurrency.
      ok        200 {"label": "positive"} ("good" reviews) or {"label": "negative"}
      429       Retry-After: one of `retry_after` (seconds)
      503       an error body
      hang      reads the request, answers nothing for `hang` s, then closes the connection
      malformed 200 with a truncated JSON body
    Every request is logged as (row, attempt, fault, Authorization header, monotonic time):
    what was paid for, per process (the header tells the processes apart)."""

    def __init__(self, seed: int = 0, mix: dict | None = None, hang: float = 1.0,
                 retry_after: tuple[str, ...] = ("0", "0", "0", "1")):
        self.seed, self.mix, self.hang, self.retry_after = seed, mix or FAULT_MIX, hang, retry_after
        self.log: list[tuple[int, int, str, str | None, float]] = []
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, *a):
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
                text = body["messages"][-1]["content"]
                row = int(ROW.search(text).group(1))
                with outer.lock:
                    attempt = outer.seen[text]
                    outer.seen[text] += 1
                    rng = random.Random(f"{outer.seed}:{text}:{attempt}")
                    fault = outer.draw(rng.random())
                    outer.log.append((row, attempt, fault, self.headers.get("Authorization"), time.monotonic()))
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "rate limited"}}',
                                      {"Retry-After": rng.choice(outer.retry_after)})
                if fault == "503":
                    return self._send(503, b'{"error": {"message": "over capacity"}}')
                if fault == "hang":
                    time.sleep(outer.hang)
                    self.close_connection = True
                    return None
                if fault == "malformed":
                    return self._send(200, b'{"id": "x", "choices": [{"message": ')
                label = "positive" if " good" in text else "negative"
                reply = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                      "message": {"role": "assistant", "content": json.dumps({"label": label})}}],
                         "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}
                return self._send(200, json.dumps(reply).encode())

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the listen backlog: concurrent clients connect at once
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def draw(self, u: float) -> str:
        for fault, p in self.mix.items():
            if u < p:
                return fault
            u -= p
        return "ok"

    def __enter__(self) -> FlakyProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests(self, auth: str | None = None) -> list[tuple[int, int, str, str | None, float]]:
        """The requests received (from the process using API key `auth`, or all)."""
        with self.lock:
            return [r for r in self.log if auth is None or r[3] == f"Bearer {auth}"]


def flaky_raw(url: str, cache_dir: Path, concurrency: int = 8, timeout: float = 0.3, retries: int = 3) -> dict:
    """The llm group (as params.yaml writes it) of a groq provider at `url`, with a short timeout
    and backoff: a Retry-After of 1 s is honoured (max_backoff 1 s)."""
    return {"provider": "groq", "api_model": "fake-model", "prompts": PROMPTS, "mode": "label", "constrained": True,
            "decoding": {"temperature": 0.0, "max_tokens": 5, "seed": 0, "top_logprobs": 10},
            "context_tokens": 131072, "chars_per_token": 2, "max_text_tokens": 8000, "base_url": url,
            "api_key_env": "TEXTCLF_LLM_API_KEY", "concurrency": concurrency, "rpm": None, "timeout": timeout,
            "retries": {"max": retries, "backoff": 0.01, "max_backoff": 1.0},
            "cache": {"enabled": True, "dir": str(cache_dir)}}


def flaky_texts(n: int) -> list[str]:
    return [f"row {i} {'good' if i % 2 else 'bad'}" for i in range(n)]


def label_rows(raw: dict, texts: list[str], labels: tuple[str, ...] = ("negative", "positive")) -> dict:
    """Label `texts` as approach.predict_texts does (the same functions, in the same order:
    config, truncation, requests, policy, cache, endpoint, send_all, collect), minus the stage
    around it; returns what each row ended as and what the client counted."""
    from textclf.approaches.llm import approach, client
    from textclf.approaches.llm.model_config import build_conf
    from textclf.approaches.llm.policy import api_key
    from textclf.approaches.llm.settings import read
    from textclf.approaches.llm.transport import endpoint, send_all

    s = read(raw)
    conf = build_conf(s, raw, list(labels), None)
    texts, _ = approach.truncate_texts(raw, conf, texts)
    requests = approach.requests_for(conf, texts)
    policy = client.Policy.from_settings(s)
    cache = approach.cache_for(s)
    key = api_key(s, Path.cwd())
    start = time.perf_counter()
    try:
        with endpoint(s, raw, needed=not approach.all_cached(requests, cache)) as base_url:
            outcomes, stats = send_all(s, conf, requests, base_url, key, cache, policy, desc="faults")
    finally:
        cache.close()
    wall = time.perf_counter() - start
    pred, _, failed, reasons, _ = approach.collect(conf, outcomes)
    return {"rows": len(texts), "labelled": {str(i): int(pred[i]) for i, o in enumerate(outcomes) if o.response},
            "failed": failed, "unparseable": len(reasons),
            "stats": {"requests": stats.requests, "retries": stats.retries, "cache_hits": stats.cache_hits,
                      "errors": dict(stats.errors)},
            "wall_seconds": round(wall, 3)}


LABEL_MAIN = ("import json, sys; sys.path[:0] = [sys.argv[1]]; from llm_helpers import label_rows; "
              "a = json.loads(open(sys.argv[2]).read()); "
              "open(sys.argv[3], 'w').write(json.dumps(label_rows(a['raw'], a['texts'])))")


def label_process(raw: dict, texts: list[str], work: Path, tag: str) -> subprocess.Popen:
    """label_rows in a new Python process whose API key is `tag` (the server logs it); its result
    goes to `work`/`tag`.json."""
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{tag}.args.json").write_text(json.dumps({"raw": raw, "texts": texts}))
    return subprocess.Popen([sys.executable, "-c", LABEL_MAIN, str(Path(__file__).parent), str(work / f"{tag}.args.json"),
                             str(work / f"{tag}.json")], env=dict(env(), TEXTCLF_LLM_API_KEY=tag),
                            stdout=subprocess.DEVNULL, stderr=(work / f"{tag}.log").open("w"))


def finish(proc: subprocess.Popen, work: Path, tag: str, timeout: float = 120) -> dict:
    """The result of a label_process (its log in the error when it failed)."""
    proc.wait(timeout=timeout)
    if proc.returncode != 0:
        log = (work / f"{tag}.log").read_text(errors="replace")
        raise AssertionError(f"labelling process {tag} failed ({proc.returncode}):\n{log[-5000:]}")
    return json.loads((work / f"{tag}.json").read_text())


def cached_rows(raw: dict, texts: list[str]) -> set[int]:
    """The rows whose reply is in `raw`'s cache (keys as label_rows makes them)."""
    from textclf.approaches.llm import approach
    from textclf.approaches.llm.cache import ResponseCache, request_key
    from textclf.approaches.llm.model_config import build_conf
    from textclf.approaches.llm.settings import read

    conf = build_conf(read(raw), raw, ["negative", "positive"], None)
    cache = ResponseCache(Path(raw["cache"]["dir"]) / "responses.sqlite")
    try:
        stored = cache.keys()
    finally:
        cache.close()
    return {i for i, r in enumerate(approach.requests_for(conf, texts)) if request_key(r) in stored}


def faulty_run(srv: FlakyProvider, work: Path, n: int, concurrency: int = 8) -> dict:
    """`n` rows labelled against `srv` in a new process ("first"), then again with the same
    cache in another ("again"): each process's result and the requests the server received from it."""
    raw, texts = flaky_raw(srv.url, work / "cache", concurrency), flaky_texts(n)
    out = {"raw": raw}
    for tag in ("first", "again"):
        t0 = time.monotonic()
        out[tag] = finish(label_process(raw, texts, work, tag), work, tag)
        out[tag]["process_seconds"] = round(time.monotonic() - t0, 3)
        out[f"paid_{tag}"] = srv.requests(tag)
    return out


def killed_and_resumed(srv: FlakyProvider, work: Path, n: int, kill_after: int, concurrency: int = 8) -> dict:
    """`n` rows labelled in a process ("killed") SIGKILLed once the server has received
    `kill_after` of its requests, then in a new process ("resumed") with the same cache: the
    rows cached at the kill, the resumed result, and the requests the server received from each."""
    raw, texts = flaky_raw(srv.url, work / "cache", concurrency), flaky_texts(n)
    t0 = time.monotonic()
    proc = label_process(raw, texts, work, "killed")
    deadline = time.monotonic() + 300  # imports on a loaded machine
    while len(srv.requests("killed")) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    killed_seconds = time.monotonic() - t0
    time.sleep(0.2)  # requests the dead process had written reach the server's log under its key
    out = {"raw": raw, "returncode": proc.returncode, "killed_seconds": round(killed_seconds, 3),
           "cached_at_kill": cached_rows(raw, texts), "paid_killed": srv.requests("killed")}
    t0 = time.monotonic()
    out["resumed"] = finish(label_process(raw, texts, work, "resumed"), work, "resumed")
    out["resumed"]["process_seconds"] = round(time.monotonic() - t0, 3)
    out["paid_resumed"] = srv.requests("resumed")
    return out
