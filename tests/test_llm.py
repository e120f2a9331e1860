"""Chat-LLM approach: parsing, client policy, and the predict stage against a real HTTP
server on 127.0.0.1 that injects faults (no model needed here; see test_llm_server.py)."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from textclf.approaches.llm import client, prompts
from textclf.approaches.llm.cache import ResponseCache, request_key

from textclf.stages import predict as predict_stage

from llm_helpers import FaultServer, env, in_process, make_project, read_jsonl, stage

LABELS = ["negative", "positive"]


@pytest.mark.parametrize("reply,pred", [
    ("positive", 1), ("Negative.", 0), ("**Positive**", 1), (' "negative" ', 0), ("positive: a fun film", 1),
    ("", -1), ("I think it is positive", -1), ("positively", -1), ("neutral", -1), ("pos", -1),
])
def test_label_parsing_is_strict(reply, pred):
    assert prompts.parse_label(reply, LABELS).pred == pred


def test_label_parsing_multiclass_prefers_longest_label():
    names = ["sport", "sports business", "tech"]
    assert prompts.parse_label("Sports business.", names).pred == 1
    assert prompts.parse_label("sport", names).pred == 0


@pytest.mark.parametrize("reply,pred,p", [
    ("0.8", 1, 0.8), ("0.2", 0, 0.2), ("1", 1, 1.0), ("0", 0, 0.0), (".5", 1, 0.5), ("0.49.", 0, 0.49),
    ("1.5", -1, None), ("-0.2", -1, None), ("high", -1, None), ("", -1, None), ("80%", -1, None),
])
def test_score_parsing_and_threshold(reply, pred, p):
    out = prompts.parse_score(reply, 2, positive=1, threshold=0.5)
    assert out.pred == pred
    assert (out.scores is None) if p is None else out.scores == pytest.approx((1 - p, p))


def test_logprob_parsing():
    lp = lambda p: __import__("math").log(p)  # noqa: E731
    out = prompts.parse_logprobs([("Positive", lp(0.6)), ("Negative", lp(0.3)), ("pos", lp(0.05)), ("The", lp(0.05))], LABELS)
    assert out.pred == 1 and out.scores == pytest.approx((0.3 / 0.95, 0.65 / 0.95))
    out = prompts.parse_logprobs([("The", lp(0.7)), ("negative", lp(0.2))], LABELS)
    assert out.pred == -1 and "starts no label" in out.reason and out.scores == pytest.approx((1.0, 0.0))
    # "ne" starts both "negative" and "neutral": the top token cannot decide.
    out = prompts.parse_logprobs([("ne", lp(0.5)), ("positive", lp(0.4))], ["negative", "neutral", "positive"])
    assert out.pred == -1 and "several labels" in out.reason


def test_shared_first_tokens_are_found():
    tok = lambda s: [hash(s.strip().lower()[:2])]  # noqa: E731  a tokenizer whose first token is 2 chars
    assert prompts.shared_first_tokens(["negative", "neutral", "positive"], tok) == [("negative", "neutral")]
    assert prompts.shared_first_tokens(["negative", "positive"], tok) == []


def test_prompts_with_few_shot_and_bad_template():
    msgs = prompts.build_messages({"label_system": "One of: {labels}", "score_system": "", "user": "R: {text}"},
                                  "label", LABELS, "a film", shots=[("great", 1), ("dull", 0)])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "One of: negative, positive" and msgs[2]["content"] == "positive"
    assert msgs[-1]["content"] == "R: a film"
    with pytest.raises(ValueError, match=r"uses \{review\}"):
        prompts.build_messages({"label_system": "x", "user": "{review}"}, "label", LABELS, "t")


def test_retry_after_and_backoff():
    assert client.retry_after({"retry-after": "2"}) == 2.0
    assert client.retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert client.retry_after({"retry-after": "soon"}) is None and client.retry_after({}) is None
    policy = client.Policy(backoff=1.0, max_backoff=8.0)
    rng = random.Random(0)
    for attempt, base in [(0, 1), (1, 2), (2, 4), (5, 8)]:
        d = client.backoff_delay(attempt, policy, rng, None)
        assert base / 2 <= d <= base
    assert client.backoff_delay(0, policy, rng, server_says=5.0) == 5.0  # Retry-After wins when longer


def test_rate_limiter_spaces_requests():
    lim = client.RateLimiter(rpm=600)  # one per 0.1 s
    start = time.monotonic()
    for _ in range(4):
        lim.wait()
    assert time.monotonic() - start >= 0.29


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="concurrency"):
        client.Policy.from_config({"concurrency": 0})


def test_cache_roundtrip_and_key(tmp_path):
    c = ResponseCache(tmp_path / "c.sqlite")
    k = request_key({"model": "m", "messages": [{"role": "user", "content": "x"}], "decoding": {"t": 0}})
    assert k == request_key({"decoding": {"t": 0}, "messages": [{"content": "x", "role": "user"}], "model": "m"})
    assert k != request_key({"model": "m", "messages": [{"role": "user", "content": "y"}], "decoding": {"t": 0}})
    assert c.get(k) is None
    c.put(k, {"text": "positive"})
    c.close()
    assert ResponseCache(tmp_path / "c.sqlite").get(k) == {"text": "positive"}


# ---------------------------------------------------------------- stage against a real HTTP server

FAST = ["llm=groq", "llm.rpm=null", "llm.timeout=1", "llm.retries.backoff=0.05", "llm.retries.max=3",
        "llm.concurrency=4", "llm.price.input_per_mtok=1.0", "llm.price.output_per_mtok=2.0"]


def overrides(url: str, cache) -> list[str]:
    return [*FAST, f"llm.base_url={url}", f"llm.cache.dir={cache}"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "test-key-not-secret")


def predict(proj):
    in_process(proj, predict_stage.main, ["llm"])


def test_faults_every_row_accounted_for_and_failed_rows_retried(tmp_path):
    texts = [f"plain {i} {'good' if i % 2 else 'bad'}" for i in range(8)] + [
        "a good one [429]", "a bad one [500]", "a good one [slow]", "a bad one [malformed]",
        "whatever [chatty]", "a good one [dead]"]
    with FaultServer() as srv:
        proj = make_project(tmp_path, texts, overrides(srv.url, tmp_path / "cache"))
        t0 = time.monotonic()
        run1 = stage(proj, "textclf.stages.predict", "llm", check=False)
        took = time.monotonic() - t0
        # The dead row failed: the stage fails, lists it, and writes no metrics or predictions.
        assert run1.returncode != 0 and "1 of 14 rows failed" in run1.stdout, run1.stdout[-2000:]
        failed = read_jsonl(proj / "logs/llm/llm/test.failed.jsonl")
        assert [f["row"] for f in failed] == [13] and "http_503 after 4 attempt(s)" in failed[0]["error"]
        assert not (proj / "metrics/llm.json").exists() and not (proj / "predictions/llm/test.jsonl").exists()
        # Each faulty row was tried twice (fault, then answer); the dead one 1 + 3 retries.
        for tag in ("[429]", "[500]", "[malformed]", "[slow]"):
            assert sum(tag in t for t in srv.texts()) == 2, tag
        assert sum("[dead]" in t for t in srv.texts()) == 4
        assert took >= 1.0  # the 429's Retry-After: 1 was honoured (backoff alone is 0.05 s)
        # The API key is never written anywhere.
        written = "".join(p.read_text(errors="replace") for p in proj.rglob("*") if p.is_file())
        assert "test-key-not-secret" not in written + run1.stdout

        # The server recovers: the rerun requests only the failed row, and every row is accounted for.
        srv.healed = True
        n = len(srv.attempts)
        predict(proj)
        assert [t for t in srv.texts()[n:]] == [f"Review: {texts[13]}"]
        m = json.loads((proj / "metrics/llm.json").read_text())
        d = m["details"]["test"]
        assert m["rows"] == d["rows"] == 14 and d["answered"] == 13 and d["unparseable"] == 1 and d["failed"] == 0
        assert d["unparseable_examples"][0]["row"] == 12 and m["accuracy"] == pytest.approx(13 / 14)
        assert not (proj / "logs/llm/llm/test.failed.jsonl").exists()


def test_stage_counts_unparseable_and_reruns_from_cache(tmp_path):
    texts = [f"film {i} {'good' if i % 3 else 'bad'}" for i in range(9)] + ["meh [chatty]", "ok [429]", "x [500]"]
    cache = tmp_path / "cache"
    with FaultServer() as srv:
        proj = make_project(tmp_path, texts, overrides(srv.url, cache))
        predict(proj)
        m = json.loads((proj / "metrics/llm.json").read_text())
        t = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
        preds = read_jsonl(proj / "predictions/llm/test.jsonl")
        assert len(preds) == len(texts) and m["rows"] == len(texts)
        assert m["unparseable"] == 1 and preds[9]["pred_name"] == "unparseable"
        d = m["details"]["test"]
        assert d["unparseable"] == 1 and d["unparseable_rate"] == round(1 / 12, 6) and d["failed"] == 0
        assert d["prompt_tokens"] == 20 * 12 and d["completion_tokens"] == 12 and d["cost_usd"] == 0.000264
        assert m["accuracy"] == pytest.approx(11 / 12)  # the fake model is right except for the chatty row
        assert t["requests"] == 14 and t["retries"] == 2 and t["cache_hits"] == 0
        assert t["errors"] == {"http_429": 1, "http_500": 1}
        metrics_bytes = (proj / "metrics/llm.json").read_bytes()
        n = len(srv.attempts)

        # Rerun with the same params: zero requests, byte-identical metrics.
        predict(proj)
        assert len(srv.attempts) == n
        t2 = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
        assert t2["requests"] == 0 and t2["cache_hits"] == 12
        assert (proj / "metrics/llm.json").read_bytes() == metrics_bytes


def test_sigkill_midway_resumes_without_repeating_finished_requests(tmp_path):
    from textclf.approaches.llm import requests_for

    texts = [f"review {i} {'good' if i % 2 else 'bad'}" for i in range(40)]
    cache = tmp_path / "cache"
    with FaultServer(delay=0.1) as srv:
        proj = make_project(tmp_path, texts, overrides(srv.url, cache) + ["llm.concurrency=2"])
        proc = subprocess.Popen([sys.executable, "-m", "textclf.stages.predict", "llm"], cwd=proj, env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Generous: on a loaded 2-core machine the stage's imports alone can take a minute.
        deadline = time.monotonic() + 300
        while len(srv.attempts) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(srv.attempts) >= 12, "the stage sent no requests within 300 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL and not (proj / "metrics/llm.json").exists()
        first = srv.texts()
        conf = json.loads((proj / "models/llm/config.json").read_text())
        keys = [request_key(r) for r in requests_for(conf, texts)]
        stored = ResponseCache(cache / "responses.sqlite").keys()
        done = {f"Review: {t}" for t, k in zip(texts, keys) if k in stored}
        # Some replies were stored before the kill, not all (exact count depends on timing).
        assert 1 <= len(done) < len(texts)

        predict(proj)
        second = srv.texts()[len(first):]
        # Exactly the rows without a stored reply were requested, each once; at most the
        # two requests in flight at the kill were sent in both runs.
        assert not done & set(second) and sorted(second) == sorted({f"Review: {t}" for t in texts} - done)
        assert len(set(first) & set(second)) <= 2
        t = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
        assert t["cache_hits"] == len(done) and t["requests"] == len(second)
        assert len(read_jsonl(proj / "predictions/llm/test.jsonl")) == len(texts)


def test_top_k_orders_as_llama_cpp_python_does():
    """serve.top_k picks what `sorted(zip(logprobs, range(n)), reverse=True)[:k]` picks
    (highest first, ties to the higher id) without sorting the vocabulary."""
    import numpy as np

    from textclf.approaches.llm.serve import top_k

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 3000))
        # many ties in half the trials (integers), none in the other half
        x = (rng.integers(-4, 3, n) if trial % 2 else rng.standard_normal(n)).astype(np.float32)
        k = int(rng.integers(0, 15))
        assert top_k(x, k).tolist() == [i for _, i in sorted(zip(x, range(n)), reverse=True)[:k]], (n, k)
