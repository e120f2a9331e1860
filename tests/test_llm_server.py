"""The chat-LLM approach against a real llama.cpp server on 127.0.0.1 (SmolLM2-135M from
its PyPI package), through the groq SDK; and the CI profile through DVC."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import REPO, RT
from llm_helpers import env, in_process, make_project, read_jsonl
from textclf.approaches.llm import budget, client, model_config
from textclf.approaches.llm.approach import collect, requests_for, truncate_texts
from textclf.approaches.llm.cache import ResponseCache
from textclf.approaches.llm.local_server import LocalServer
from textclf.approaches.llm.model_config import check_logprob_labels
from textclf.approaches.llm.settings import read
from textclf.approaches.llm.transport import send_all
from textclf.runtime.resolve import resolve


def smollm2_cfg() -> dict:
    """The `llm` params of llm=smollm2 as composed (the prompts interpolate data.task)."""
    import tempfile

    from textclf.params import compose

    with tempfile.TemporaryDirectory() as tmp:
        return yaml.safe_load(compose(REPO, ["llm=smollm2"], Path(tmp) / "params.yaml").read_text())["llm"]


def build_conf(cfg: dict, labels: list[str], train=None) -> dict:
    """config.json's content for the raw llm group `cfg`."""
    return model_config.build_conf(read(cfg), cfg, labels, train)


def send(cfg: dict, conf: dict, requests: list[dict], url: str, cache=None, policy=None):
    s = read(cfg)
    return send_all(s, conf, requests, url, "unused", cache, policy or client.Policy.from_settings(s))


@pytest.fixture(scope="module")
def smol():
    cfg = smollm2_cfg()
    path, _ = resolve(cfg["model"])
    with LocalServer(path, n_threads=2, n_ctx=1024) as url:
        yield cfg, path, url


def test_groq_sdk_talks_to_llama_cpp_under_openai_v1(smol):
    import groq

    cfg, _, url = smol
    api = groq.Groq(api_key="unused", base_url=url, max_retries=0, timeout=60)
    r = api.chat.completions.create(model="any", temperature=0, max_tokens=3, logprobs=True, top_logprobs=5,
                                    messages=[{"role": "user", "content": "Say yes."}])
    assert r.usage.prompt_tokens > 0 and isinstance(r.choices[0].message.content, str)
    top = r.choices[0].logprobs.content[0].top_logprobs
    assert len(top) == 5 and all(t.logprob <= 0 for t in top)


@pytest.mark.parametrize("mode", ["label", "score", "logprob"])
def test_modes_end_to_end_and_cached_rerun(smol, tmp_path, mode):
    cfg, _, url = smol
    cfg = {**cfg, "mode": mode, "concurrency": 2}
    labels = ["negative", "positive"]
    texts = ["A wonderful, moving film.", "Boring and far too long.", "I loved every minute.", "A total mess."]
    train = (["An utterly charming, funny film.", "Dull, lifeless and much too long.", "A joy.", "A tedious mess."],
             [1, 0, 1, 0])
    conf = build_conf(cfg, labels, train)  # the profile's 2 few-shot examples come from here
    assert len(conf["shots"]) == 2 and {y for _, y in conf["shots"]} <= {0, 1}
    reqs = requests_for(conf, texts)
    cache = ResponseCache(tmp_path / "r.sqlite")
    outcomes, stats = send(cfg, conf, reqs, url, cache)
    assert stats.requests == 4 and stats.cache_hits == 0 and all(o.response for o in outcomes)
    pred, scores, failed, reasons, tokens = collect(conf, outcomes)
    assert not failed and tokens["prompt_tokens"] > 0
    assert set(pred.tolist()) <= {-1, 0, 1} and len(reasons) == int((pred == -1).sum())
    if mode == "logprob":  # probabilities from the first token's top logprobs (SmolLM2 often starts
        # with another word, making the row unparseable, but a label is among its top tokens)
        has = scores.sum(axis=1) > 0
        assert has.any() and scores[has].sum(axis=1) == pytest.approx(1.0)
        assert all(outcome.response["top_logprobs"] for outcome in outcomes)
    again, stats2 = send(cfg, conf, reqs, url, cache)
    assert stats2.requests == 0 and stats2.cache_hits == 4
    assert [o.response for o in again] == [o.response for o in outcomes]


def test_sampled_row_logprobs_equal_llama_cpp_pythons_own(smol):
    """The server computes logprobs from the rows sampling reads (logits_all off); the same
    requests against llama-cpp-python's own logprobs (logits_all on) give identical replies:
    text, usage, and every returned position's token, logprob and top list."""
    import groq

    cfg, path, url = smol
    messages = [[{"role": "system", "content": "Answer with one word: positive or negative."},
                 {"role": "user", "content": f"Review: {t}"}]
                for t in ("A wonderful, moving film.", "Boring and far too long.", "Meh.", "Ça alors, quel film !")]

    def replies(base_url):
        api = groq.Groq(api_key="unused", base_url=base_url, max_retries=0, timeout=60)
        out = []
        for m in messages:
            r = api.chat.completions.create(model="any", temperature=0, max_tokens=5, seed=0, logprobs=True,
                                            top_logprobs=10, messages=m)
            out.append((r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens,
                        [(c.token, c.logprob, [(t.token, t.logprob) for t in c.top_logprobs])
                         for c in r.choices[0].logprobs.content]))
        return out

    ours = replies(url)
    with LocalServer(path, n_threads=2, n_ctx=1024, library_logprobs=True) as library_url:
        theirs = replies(library_url)
    assert ours == theirs
    assert all(len(r[3]) == r[2] >= 1 and len(r[3][0][2]) >= 10 for r in ours)  # a position per token


def test_logprob_mode_refuses_labels_sharing_a_first_token(smol):
    _, path, _ = smol
    check_logprob_labels(path, ["negative", "positive"])
    with pytest.raises(ValueError, match="start with the same token"):
        check_logprob_labels(path, ["positive", "positive review"])


def test_server_child_gets_no_secrets_and_its_log_is_cleaned(monkeypatch):
    """The llama.cpp child's environment (read from /proc) lacks the API key and the other
    secret-named variables, keeps the rest; its log is in LOG_DIR while it runs and removed
    after; a log left by a killed run (its pid gone) is removed at the next start."""
    from textclf.approaches.llm import local_server

    monkeypatch.setenv("GROQ_API_KEY", "gsk-test-secret")
    monkeypatch.setenv("hf_token", "hf-test-secret")
    monkeypatch.setenv("DB_PASSWORD", "pw-test-secret")
    monkeypatch.setenv("TEXTCLF_PLAIN_SETTING", "kept")
    gone = subprocess.Popen(["true"])
    gone.wait()
    local_server.LOG_DIR.mkdir(parents=True, exist_ok=True)
    stale = local_server.LOG_DIR / f"{gone.pid}-1.log"
    stale.write_text("left by a SIGKILLed run")
    path, _ = resolve(smollm2_cfg()["model"])
    srv = LocalServer(path, n_threads=1, n_ctx=512)
    srv.start()
    try:
        environ = Path(f"/proc/{srv.proc.pid}/environ").read_bytes().split(b"\0")
        names = {e.split(b"=", 1)[0].decode() for e in environ if e}
        logs = list(local_server.LOG_DIR.glob(f"{os.getpid()}-{srv.port}.log"))
        assert logs and not stale.exists()
    finally:
        srv.stop()
    assert "PATH" in names and "TEXTCLF_PLAIN_SETTING" in names  # the environment is passed...
    assert not {"GROQ_API_KEY", "hf_token", "DB_PASSWORD"} & names  # ...without the secrets
    assert b"gsk-test-secret" not in b"".join(environ)
    assert not any(f.exists() for f in logs)


def test_server_start_skips_an_impostor_and_a_taken_port(monkeypatch):
    """The picked port is taken (by an HTTP server answering /v1/models with another model)
    before the child binds it: that server is not taken for ours, and a new port is picked."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from textclf.approaches.llm import local_server

    class Impostor(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"object": "list", "data": [{"id": "someone-else", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    taken = httpd.server_address[1]
    ports = iter([taken])
    real_free_port = local_server.free_port
    monkeypatch.setattr(local_server, "free_port", lambda host="127.0.0.1": next(ports, None) or real_free_port(host))
    path, _ = resolve(smollm2_cfg()["model"])
    try:
        with LocalServer(path, n_threads=1, n_ctx=512) as url:
            assert not url.endswith(f":{taken}")
            import urllib.request

            with urllib.request.urlopen(f"{url}/v1/models", timeout=10) as r:
                assert [m["id"] for m in json.loads(r.read())["data"]][0].startswith("textclf-")
    finally:
        httpd.shutdown()
        httpd.server_close()


# 20 hwu64 intents (many share a first token: logprob mode cannot tell them apart) and two
# labels that need escaping in a GBNF literal.
MANY = ["alarm_query", "alarm_remove", "alarm_set", "audio_volume_down", "audio_volume_mute", "audio_volume_up",
        "calendar_query", "calendar_remove", "calendar_set", "cooking_recipe", "datetime_query", "email_query",
        "email_sendemail", "general_joke", "iot_cleaning", "iot_hue_lightoff", "music_query", "play_music",
        "weather_query", "transport_ticket", 'say "hi"', "back\\slash"]
REQUESTS = ["wake me up at seven tomorrow", "cancel my alarm", "turn the volume down", "what's the weather in paris",
            "tell me a joke", "play some jazz", "book a train ticket to london", "say hi to everyone",
            "how do i make pancakes", "switch off the lights in the kitchen"]


def test_logprob_falls_back_to_constrained_label_mode_with_many_labels(smol, caplog):
    """Logprob mode on labels sharing first tokens falls back to constrained label mode,
    recorded and warned; every reply of the real server is exactly one of the 22 labels
    (escaped quote and backslash included): 0 unparseable. Unconstrained, the same model
    answers things that are no label."""
    cfg, path, url = smol
    cfg = {**cfg, "mode": "logprob", "few_shot": {"k": 0}, "server": {**cfg["server"], "n_ctx": 1024}}
    assert len(MANY) >= 20
    with caplog.at_level("WARNING"):
        conf = build_conf(cfg, MANY)
    assert conf["mode"] == "label" and conf["mode_requested"] == "logprob" and "alarm_query" in conf["mode_reason"]
    assert "constrained label mode used instead" in caplog.text
    assert conf["constraint"]["kind"] == "grammar" and '"say \\"hi\\""' in conf["constraint"]["grammar"]
    outcomes, stats = send(cfg, conf, requests_for(conf, REQUESTS), url)
    pred, _, failed, reasons, _ = collect(conf, outcomes)
    replies = [o.response["text"] for o in outcomes]
    assert not failed and not reasons and all(r in MANY for r in replies), replies
    assert (pred >= 0).all() and [MANY[p] for p in pred] == replies

    free = build_conf({**cfg, "mode": "label", "constrained": False}, MANY)
    outcomes, _ = send(cfg, free, requests_for(free, REQUESTS), url)
    assert any(o.response["text"] not in MANY for o in outcomes)  # what the grammar prevents
    with pytest.raises(ValueError, match="llm.constrained=true"):
        build_conf({**cfg, "constrained": False}, MANY)


def test_a_1mb_text_is_truncated_and_answered_by_the_real_server(smol, tmp_path):
    """The predict stage (provider local, the running SmolLM2 server) on a 1 MB text: cut to
    the context's room with the model's vocabulary, answered, counted in truncated_rows; the
    short texts' requests are exactly those of the untruncated texts. Sent whole, the long
    text is refused by the server."""
    import groq

    cfg, _, url = smol
    big = "a good film, " * 80_000
    assert len(big) >= 1_000_000
    texts = ["a good film", "a bad film", big]
    proj = make_project(tmp_path, texts, ["llm=smollm2", f"llm.base_url={url}", "llm.server.n_ctx=1024",
                                          f"llm.cache.dir={tmp_path / 'cache'}"])
    from textclf.stages import predict as predict_stage

    in_process(proj, predict_stage.main, ["llm"])
    m = json.loads((proj / "metrics/llm.json").read_text())["details"]["test"]
    assert m["rows"] == 3 and m["failed"] == 0 and m["truncated_rows"] == 1 and m["unparseable"] == 0
    conf = json.loads((proj / "models/llm/config.json").read_text())
    assert conf["truncation"]["n_ctx"] == 1024 and 0 < conf["truncation"]["text_tokens"] < 1024
    fitted, cut = truncate_texts(cfg, conf, texts)
    assert cut == 1 and fitted[:2] == texts[:2] and big.startswith(fitted[2]) and len(fitted[2]) < 10_000
    assert requests_for(conf, fitted)[:2] == requests_for(conf, texts[:2])
    # The cut text fills the context up to the reply and the margin (its reply comes from the cache).
    cache = ResponseCache(tmp_path / "cache" / "responses.sqlite")
    (long_reply,), stats = send(cfg, conf, requests_for(conf, fitted[2:]), url, cache)
    assert stats.cache_hits == 1 and long_reply.response["text"] in ("negative", "positive")
    used, room = long_reply.response["usage"]["prompt_tokens"], 1024 - conf["decoding"]["max_tokens"]
    assert room - 2 * budget.MARGIN <= used <= room, (used, room)
    api = groq.Groq(api_key="unused", base_url=url, max_retries=0, timeout=120)
    with pytest.raises(groq.APIStatusError):
        api.chat.completions.create(model="any", max_tokens=5, messages=[{"role": "user", "content": big[:40_000]}])


@pytest.mark.slow
def test_ci_profile_through_dvc_reruns_from_cache(tmp_path):
    """fit@llm and predict@llm through `dvc repro` on the CI profile (SmolLM2), then a
    forced rerun: zero requests, byte-identical metrics."""
    if not RT.is_dir():
        pytest.fail(f"the data mirror {RT} is missing: the tests need ../shared beside the repo")
    proj = tmp_path / "project"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (REPO / f).is_file():
            (proj / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, proj / f)
    e = {**env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x.invalid", "GIT_COMMITTER_NAME": "t",
         "GIT_COMMITTER_EMAIL": "t@x.invalid", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def sh(cmd: str) -> str:
        p = subprocess.run(cmd, cwd=proj, shell=True, env=e, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.returncode == 0, f"`{cmd}` failed:\n{p.stdout[-5000:]}"
        return p.stdout

    sh("git init -q && git add -A && git commit -qm init")
    sh(f"python -m textclf.params profile=ci data.local_dir={RT} data.limits.train=60 data.limits.validation=20 "
       f"data.limits.test=16 llm.cache.dir={tmp_path / 'cache'}")
    assert "Starting llama.cpp server" in sh("dvc repro predict@llm")
    m = json.loads((proj / "metrics/llm.json").read_text())
    first = (proj / "metrics/llm.json").read_bytes()
    t = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
    assert m["rows"] == 16 and m["details"]["test"]["rows"] == 16 and t["requests"] >= 16
    assert len(read_jsonl(proj / "predictions/llm/test.jsonl")) == 16
    assert "Data and pipelines are up to date" in sh("dvc repro predict@llm")
    cached_run = sh("dvc repro -f -s predict@llm")
    t2 = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
    assert t2["requests"] == 0 and t2["cache_hits"] == 16
    assert (proj / "metrics/llm.json").read_bytes() == first
    # Every reply was cached: no server was started to serve none of them.
    assert "Starting llama.cpp server" not in cached_run and "Running stage 'predict@llm'" in cached_run


# ---------------------------------------------------------------- the server dies with its parent

def serve_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` and that run textclf's llama.cpp server (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        if ppid == pid and b"textclf.approaches.llm.server_app" in cmd:
            found.append(int(stat.parent.name))
    return found


def gone(pid: int) -> bool:
    """Exited (a zombie left for its new parent to reap counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_for(check, timeout: float, step: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return check()


def kill_leftovers(pids) -> None:
    for pid in pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_stage_leaves_no_server_process_and_its_log_is_cleaned(tmp_path):
    """The predict stage (provider local, no base_url) starts its llama.cpp server; SIGKILL of
    the stage while the server answers: the server's pid is gone within seconds; the log it
    leaves (the stage could not remove it) is removed by the next start's clean_logs()."""
    from textclf.approaches.llm import local_server

    texts = [f"review {i} {'good' if i % 2 else 'bad'}" for i in range(40)]
    proj = make_project(tmp_path, texts, ["llm=smollm2", "llm.server.n_threads=1", "llm.server.n_ctx=1024",
                                          f"llm.cache.dir={tmp_path / 'cache'}"])
    stage = subprocess.Popen([sys.executable, "-m", "textclf.stages.predict", "llm"], cwd=proj, env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = []
    try:
        child = wait_for(lambda: serve_children(stage.pid), 300, step=0.1)
        assert len(child) == 1, "the stage started no llama.cpp server within 300 s"
        cmd = Path(f"/proc/{child[0]}/cmdline").read_bytes().split(b"\0")
        port = int(cmd[cmd.index(b"--port") + 1])

        def answers():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        assert wait_for(answers, 120, step=0.2), "the server never answered"
    finally:
        stage.send_signal(signal.SIGKILL)
        stage.wait()
    try:
        assert wait_for(lambda: gone(child[0]), 30, step=0.1), f"server pid {child[0]} outlived the SIGKILLed stage"
    finally:
        kill_leftovers(child)
    log = local_server.LOG_DIR / f"{stage.pid}-{port}.log"
    assert log.exists()  # left behind by the kill...
    local_server.clean_logs()
    assert not log.exists()  # ...and removed at the next start


def test_a_parent_killed_during_the_servers_imports_still_stops_it():
    """The parent is SIGKILLed while its server child is still importing (before it could
    read its parent's pid itself): the child, told the pid on its command line, exits instead
    of loading the model and serving forever as an orphan."""
    path, _ = resolve(smollm2_cfg()["model"])
    code = ("import sys; from pathlib import Path; from textclf.approaches.llm.local_server import LocalServer; "
            "LocalServer(Path(sys.argv[1]), n_threads=1, n_ctx=512).start()")
    parent = subprocess.Popen([sys.executable, "-c", code, str(path)], env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = []
    try:
        child = wait_for(lambda: serve_children(parent.pid), 300)
        assert len(child) == 1, "no server child within 300 s"
    finally:
        parent.send_signal(signal.SIGKILL)  # at once: the child has only just started its imports
        parent.wait()
    try:
        assert wait_for(lambda: gone(child[0]), 60, step=0.1), f"orphaned server pid {child[0]} still runs"
    finally:
        kill_leftovers(child)
