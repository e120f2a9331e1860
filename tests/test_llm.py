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

from llm_helpers import FaultServer, env, in_process, llm_settings, make_project, policy, read_jsonl, stage
from textclf.approaches.llm import client, prompts
from textclf.approaches.llm.cache import ResponseCache, request_key
from textclf.stages import predict as predict_stage

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
    pol = policy(backoff=1.0, max_backoff=8.0)
    rng = random.Random(0)
    for attempt, base in [(0, 1), (1, 2), (2, 4), (5, 8)]:
        d = client.backoff_delay(attempt, pol, rng, None)
        assert base / 2 <= d <= base
    assert client.backoff_delay(0, pol, rng, server_says=5.0) == 5.0  # Retry-After wins when longer


def test_rate_limiter_spaces_requests():
    lim = client.RateLimiter(rpm=600)  # one per 0.1 s
    start = time.monotonic()
    for _ in range(4):
        lim.wait()
    assert time.monotonic() - start >= 0.29


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="concurrency"):
        client.Policy.from_settings(llm_settings(concurrency=0))
    with pytest.raises(ValueError, match="max_backoff > 0"):
        client.Policy.from_settings(llm_settings(retries={"max_backoff": 0}))


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
    # The fake server is not Groq's host: its key is read from TEXTCLF_LLM_API_KEY.
    return [*FAST, f"llm.base_url={url}", f"llm.cache.dir={cache}", "llm.api_key_env=TEXTCLF_LLM_API_KEY"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "test-key-not-secret")
    monkeypatch.setenv("TEXTCLF_LLM_API_KEY", "test-key-not-secret")


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


def test_label_words_are_what_the_model_sees_and_answers(tmp_path):
    """data.label_words (labels named in jargon) reach the prompt and the constraint; the
    answers map back to the labels, whose names stay as they were everywhere else."""
    texts = [f"film {i} {'good' if i % 2 else 'bad'}" for i in range(6)]
    words = ("a review that pans it", "a review that praises it")
    with FaultServer(words=words) as srv:
        proj = make_project(tmp_path, texts, [*overrides(srv.url, tmp_path / "cache"),
                                              f"data.label_words={{negative:'{words[0]}',positive:'{words[1]}'}}"])
        predict(proj)
        body = srv.bodies[0]
        assert body["messages"][0]["content"].endswith(f"one of: {words[0]}, {words[1]}.")
        assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == list(words)
    assert json.loads((proj / "models/llm/config.json").read_text())["labels"] == list(words)
    assert json.loads((proj / "data/prepared/labels.json").read_text())["label_names"] == ["negative", "positive"]
    preds = read_jsonl(proj / "predictions/llm/test.jsonl")
    assert [p["pred_name"] for p in preds] == ["positive" if "good" in t else "negative" for t in texts]
    assert json.loads((proj / "metrics/llm.json").read_text())["accuracy"] == 1.0


def test_sigkill_midway_resumes_without_repeating_finished_requests(tmp_path):
    from textclf.approaches.llm.approach import requests_for

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

    from textclf.approaches.llm.server_app import top_k

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 3000))
        # many ties in half the trials (integers), none in the other half
        x = (rng.integers(-4, 3, n) if trial % 2 else rng.standard_normal(n)).astype(np.float32)
        k = int(rng.integers(0, 15))
        assert top_k(x, k).tolist() == [i for _, i in sorted(zip(x, range(n)), reverse=True)[:k]], (n, k)


# ---------------------------------------------------------------- constrained label mode, fallback, truncation

def _gbnf_unescape(literal: str) -> str:
    """Reads a GBNF string literal back (the escapes gbnf_literal writes), to check round trips."""
    assert literal[0] == literal[-1] == '"'
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        if body[i] == "\\":
            c = body[i + 1]
            if c == "x":
                out.append(chr(int(body[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(c, c))
            i += 2
        else:
            assert body[i] != '"', f"unescaped quote in {literal}"
            out.append(body[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("label", ['say "hi"', "back\\slash", 'both \\" mixed', "tab\tand\nnewline", "bell\x07",
                                   "café_über", "plain_label"])
def test_gbnf_literal_escapes_and_round_trips(label):
    lit = prompts.gbnf_literal(label)
    assert _gbnf_unescape(lit) == label
    assert "\n" not in lit and "\t" not in lit  # a raw newline would end the rule


def test_label_grammar_is_exactly_one_label():
    g = prompts.label_grammar(["a", 'b"c', "d\\e"])
    assert g == 'root ::= "a" | "b\\"c" | "d\\\\e"'


def test_constrained_parsing_is_exact():
    names = ["alarm_query", "alarm_set", 'say "hi"']
    assert prompts.parse_constrained("alarm_set", names, "grammar").pred == 1
    assert prompts.parse_constrained('say "hi"', names, "grammar").pred == 2
    assert prompts.parse_constrained("alarm_set.", names, "grammar").pred == -1  # not repaired
    assert prompts.parse_constrained('{"label": "alarm_query"}', names, "json_schema").pred == 0
    assert prompts.parse_constrained(' {"label":"say \\"hi\\""} ', names, "json_schema").pred == 2
    for bad in ('{"label": "alarm"}', "alarm_query", '{"intent": "alarm_query"}', "[1]", '{"label": 3}'):
        out = prompts.parse_constrained(bad, names, "json_schema")
        assert out.pred == -1 and out.reason, bad


def test_constrained_max_tokens_fit_the_longest_label():
    names = ["a", "recommendation_locations", "é"]
    assert prompts.constrained_max_tokens("grammar", names) == len("recommendation_locations") + 1
    assert prompts.constrained_max_tokens("json_schema", names) >= len('{"label": "recommendation_locations"}')


def test_response_format_enumerates_the_labels():
    rf = prompts.label_response_format(["x", "y"])
    assert rf["type"] == "json_schema"
    schema = rf["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == ["x", "y"] and schema["required"] == ["label"]
    assert schema["additionalProperties"] is False


def test_logprob_falls_back_to_constrained_label_mode_only_when_allowed():
    from textclf.approaches.llm.model_config import choose_mode
    from textclf.approaches.llm.settings import LlmMode

    assert choose_mode(LlmMode.logprob, True, []) == (LlmMode.logprob, None)
    assert choose_mode(LlmMode.label, True, [("a", "b")]) == (LlmMode.label, None)
    mode, reason = choose_mode(LlmMode.logprob, True, [("alarm_query", "alarm_set")])
    assert mode is LlmMode.label and "alarm_query" in reason and "constrained label mode" in reason
    with pytest.raises(ValueError, match="llm.constrained=true"):
        choose_mode(LlmMode.logprob, False, [("alarm_query", "alarm_set")])


def test_build_conf_records_fallback_constraint_and_budget(monkeypatch, caplog):
    """build_conf with a stub model (no GGUF): the fallback, the grammar and the budget are in config.json."""
    import textclf.approaches.llm.approach as llm
    from textclf.approaches.llm import budget, model_config

    monkeypatch.setattr(model_config, "model_identity", lambda s, raw: ({"provider": "local", "name": "m", "sha256": "s"}, "p"))
    monkeypatch.setattr(model_config, "shared_first_token_labels", lambda path, names: [("alarm_query", "alarm_set")])
    monkeypatch.setattr(model_config, "counter_for", lambda location, trunc: budget.CharEstimate(1.0, per_message=0))
    cfg = {"provider": "local", "mode": "logprob", "constrained": True, "max_text_tokens": None,
           "prompts": {"label_system": "One of: {labels}", "score_system": "", "user": "R: {text}"},
           "decoding": {"temperature": 0.0, "max_tokens": 5, "seed": 0, "top_logprobs": 10},
           "few_shot": {"k": 0}, "server": {"n_ctx": 400}}
    labels = ["alarm_query", "alarm_set", "weather_query"]

    def build_conf(raw):
        return model_config.build_conf(llm_settings(raw), raw, labels, None)

    with caplog.at_level("WARNING"):
        conf = build_conf(cfg)
    assert conf["mode"] == "label" and conf["mode_requested"] == "logprob" and "alarm_query" in conf["mode_reason"]
    assert "constrained label mode" in caplog.text
    assert conf["constraint"] == {"kind": "grammar", "grammar": prompts.label_grammar(labels)}
    assert conf["decoding"]["max_tokens"] == len("weather_query") + 1 and conf["decoding"]["logprobs"] is False
    # n_ctx - prompt with an empty text (1 char = 1 token here) - max_tokens - margin
    empty = len("One of: alarm_query, alarm_set, weather_query") + len("R: ")
    assert conf["truncation"]["text_tokens"] == 400 - empty - 14 - budget.MARGIN
    req = llm.requests_for(conf, ["t"])[0]
    assert req["constraint"] == conf["constraint"]
    # Without the constraint the same request has another cache key.
    assert request_key(req) != request_key({k: v for k, v in req.items() if k != "constraint"})
    with pytest.raises(ValueError, match="llm.constrained"):  # the schema's check (ParamsError)
        build_conf({**cfg, "constrained": None})
    # Unconstrained label mode: no constraint key at all (requests as before this setting existed).
    conf = build_conf({**cfg, "mode": "label", "constrained": False})
    assert conf["constraint"] is None and "constraint" not in llm.requests_for(conf, ["t"])[0]
    assert conf["decoding"]["max_tokens"] == 5


class Words:
    """A toy tokenizer: a token per word (and the spaces before it); detokenize joins them."""

    def tokenize(self, s: str) -> list[str]:
        import re
        return re.findall(r"\s*\S+", s)

    def detokenize(self, toks) -> bytes:
        return "".join(toks).encode()


def test_truncate_by_tokens_keeps_the_start_and_fits():
    from textclf.approaches.llm.budget import truncate_by_tokens

    w = Words()
    text = "one two three four five six"
    assert truncate_by_tokens(text, 3, w.tokenize, w.detokenize) == "one two three"
    assert truncate_by_tokens(text, 6, w.tokenize, w.detokenize) is text  # fits: untouched
    assert truncate_by_tokens(text, 100, w.tokenize, w.detokenize) is text
    # A multi-byte character cut in half by a byte count is dropped, not mangled.
    assert truncate_by_tokens("é é é", 2, w.tokenize, w.detokenize) == "é é"


def test_char_estimate_and_plan_cut_long_shots_and_keep_short_texts():
    from textclf.approaches.llm import budget

    est = budget.CharEstimate(2.0, per_message=4)
    assert est.count("abcde") == 3 and est.truncate("abcdefgh", 2) == "abcd" and est.truncate("ab", 2) == "ab"
    short, long_ = "a short text", "x" * 10_000
    assert budget.truncate_text(est, short, 100) == (short, False)
    assert budget.truncate_text(est, long_, 100) == ("x" * 200, True)

    def render(text, shots):
        msgs = [{"role": "system", "content": "sys"}]
        for t, y in shots:
            msgs += [{"role": "user", "content": t}, {"role": "assistant", "content": str(y)}]
        return msgs + [{"role": "user", "content": text}]

    ones = budget.CharEstimate(1.0, per_message=0)
    # Short shots: untouched; the text gets what they leave.
    n, shots, cut = budget.plan(ones, render, [("ab", 0), ("cd", 1)], n_ctx=200, max_tokens=5, cap=None, what="")
    assert cut == 0 and shots == [("ab", 0), ("cd", 1)] and n == 200 - (3 + 4 + 2) - 5 - budget.MARGIN
    # Long shots share the room with the text; a cap bounds both.
    n, shots, cut = budget.plan(ones, render, [("y" * 1000, 0)], n_ctx=200, max_tokens=5, cap=None, what="")
    room = 200 - (3 + 1) - 5 - budget.MARGIN
    assert cut == 1 and len(shots[0][0]) == room // 2 and n == room - room // 2
    n, _, _ = budget.plan(ones, render, [], n_ctx=200, max_tokens=5, cap=40, what="")
    assert n == 40
    with pytest.raises(ValueError, match="Raise it"):
        budget.plan(ones, render, [], n_ctx=50, max_tokens=5, cap=None, what="Raise it")


def test_budget_settings_are_checked():
    from textclf.approaches.llm import budget

    assert budget.settings(llm_settings(server={"n_ctx": 2048}, max_text_tokens=None))["n_ctx"] == 2048
    with pytest.raises(ValueError, match="max_text_tokens"):
        budget.settings(llm_settings(server={"n_ctx": 2048}, max_text_tokens=3))
    with pytest.raises(ValueError, match="context_tokens"):
        budget.settings(llm_settings(provider="groq", max_text_tokens=None))
    with pytest.raises(ValueError, match="llm.max_text_tokens"):  # not an integer: the schema refuses it
        llm_settings(max_text_tokens="many")


def test_groq_request_shape_structured_output_and_long_text_estimate(tmp_path):
    """Provider groq against the fake server: response_format json_schema with the labels as
    enum (no grammar), JSON replies parsed; a 1 MB text cut by the documented estimate
    (chars_per_token x max_text_tokens) and counted in truncated_rows."""
    big = "good " * 200_000
    texts = ["a good film", "a bad film", big, "whatever [chatty]"]
    with FaultServer() as srv:
        proj = make_project(tmp_path, texts, overrides(srv.url, tmp_path / "cache"))
        predict(proj)
        body = srv.bodies[0]
        rf = body["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["schema"]["properties"]["label"]["enum"] == LABELS
        assert "grammar" not in body and body["max_tokens"] >= len('{"label": "positive"}')
        sent = sorted(len(b["messages"][-1]["content"]) for b in srv.bodies)
        assert sent[-1] == len("Review: ") + 8000 * 2  # max_text_tokens x chars_per_token (conf/llm/groq.yaml)
    m = json.loads((proj / "metrics/llm.json").read_text())["details"]["test"]
    assert m["truncated_rows"] == 1 and m["constraint"] == "json_schema" and m["mode_used"] == "label"
    assert m["unparseable"] == 1 and m["answered"] == 3  # the chatty row ignored the schema: counted, not repaired
    conf = json.loads((proj / "models/llm/config.json").read_text())
    assert conf["constrained"] is True and conf["constraint"]["kind"] == "json_schema"
    assert conf["truncation"]["counter"] == "chars_per_token" and conf["truncation"]["text_tokens"] == 8000


# ---------------------------------------------------------------- hardening: waits, stopping, logs

def test_retry_after_is_capped_at_max_backoff(tmp_path, monkeypatch, caplog):
    """A 429 with Retry-After: 3600 waits retries.max_backoff (0.5 s), says so at WARNING, and
    the row is answered. Sleeps above 20 s are shortened to 20 s here so that, uncapped, this
    fails on the duration (and on the recorded wait) instead of hanging for an hour."""
    real_sleep, asked = time.sleep, []

    def sleep(seconds):
        asked.append(seconds)
        real_sleep(min(seconds, 20))

    texts = ["a good one [429]", "a bad one"]
    with FaultServer(retry_after="3600") as srv:
        proj = make_project(tmp_path, texts, overrides(srv.url, tmp_path / "cache") + ["llm.retries.max_backoff=0.5"])
        monkeypatch.setattr(time, "sleep", sleep)
        t0 = time.monotonic()
        with caplog.at_level("WARNING"):
            predict(proj)
        took = time.monotonic() - t0
        assert [s for t, s in srv.attempts if "[429]" in t] == [429, 200]
    t = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]
    assert t["retries"] >= 1 and t["errors"] == {"http_429": 1}
    assert json.loads((proj / "metrics/llm.json").read_text())["details"]["test"]["answered"] == 2
    # The check is what was asked to sleep: the cap, not the server's hour. The wall-clock bound
    # only catches a real hour-long wait, with room for a loaded machine.
    assert max(asked) <= 0.5 and took < 300, (took, asked)
    assert "the server asked for 3600 s (Retry-After), waiting 0.50 s" in caplog.text
    assert client.backoff_delay(0, policy(backoff=1.0, max_backoff=2.0), random.Random(0), server_says=3600.0) == 2.0


def test_a_cache_error_stops_the_run_without_sending_the_queue(tmp_path, monkeypatch):
    """The cache's disk fills after 3 replies: the run raises that error at once; of the 40
    queued rows at most concurrency (2) + 3 were sent, not all 40."""
    from textclf.approaches.llm import cache as cache_mod

    real_put, puts = cache_mod.ResponseCache.put, []

    def put(self, key, response):
        puts.append(key)
        if len(puts) > 3:
            raise sqlite3.OperationalError("database or disk is full")
        real_put(self, key, response)

    texts = [f"review {i} {'good' if i % 2 else 'bad'}" for i in range(40)]
    with FaultServer(delay=0.1) as srv:
        proj = make_project(tmp_path, texts, overrides(srv.url, tmp_path / "cache") + ["llm.concurrency=2"])
        monkeypatch.setattr(cache_mod.ResponseCache, "put", put)
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            predict(proj)
        time.sleep(0.5)  # a request still in flight is answered; nothing new starts
        assert 4 <= len(srv.attempts) <= 2 + 3, len(srv.attempts)
    assert not (proj / "metrics/llm.json").exists()


def test_ctrl_c_cancels_the_queued_requests():
    """KeyboardInterrupt in the main thread (Ctrl-C) after 3 replies: re-raised at once, and of
    the 40 queued requests at most those in flight then (concurrency 2) were sent after it."""
    import os
    import threading
    from types import SimpleNamespace as NS

    sent, lock = [], threading.Lock()

    def send(req):
        with lock:
            sent.append(req["messages"])
            if len(sent) == 3:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
        time.sleep(0.1)
        return NS(choices=[NS(message=NS(content="positive"), logprobs=None)], usage=None)

    reqs = [{"model": "m", "decoding": {}, "messages": f"row {i}"} for i in range(40)]
    # The handler this test relies on, installed here: a process started in the background by a
    # non-interactive shell inherits SIGINT as ignored, and then the signal would do nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            client.run(reqs, send, None, policy(concurrency=2, backoff=0.01))
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(0.5)
    assert 3 <= len(sent) <= 2 + 3, len(sent)


def test_httpx_request_lines_are_not_logged(tmp_path, monkeypatch, caplog):
    import logging

    for name in ("httpx", "httpcore"):  # as in a fresh process, whatever ran before
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    with FaultServer() as srv:
        proj = make_project(tmp_path, ["a good film", "a bad film"], overrides(srv.url, tmp_path / "cache"))
        with caplog.at_level("INFO"):
            predict(proj)
        assert len(srv.attempts) == 2
    names = {r.name for r in caplog.records}
    assert any(n.startswith("textclf") for n in names), names  # INFO records are captured...
    assert not {n for n in names if n.split(".")[0] in ("httpx", "httpcore")}  # ...but no request lines


# ---------------------------------------------------------------- hardening: cache identity and format

def refit(proj, tmp_path, overrides_: list[str]) -> None:
    """Recompose the throwaway project's params (make_project's dataset) and rerun fit@llm."""
    from textclf.params import compose
    from textclf.stages import fit as fit_stage

    compose(proj, ["data.source=local", f"data.local_dir={tmp_path / 'ds'}", "data.name=tiny", *overrides_])
    in_process(proj, fit_stage.main, ["llm"])


def timings(proj) -> dict:
    return json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]["test"]


def test_local_model_at_a_base_url_is_cached_apart(tmp_path, monkeypatch):
    """provider=local served at base_url (a server not started here, the fake one): the URL is
    part of the model identity, so another server's replies are not taken for this one's, nor
    for those of the server a normal run starts; with base_url null the identity is exactly the
    former one (the default run's keys unchanged)."""
    from contextlib import nullcontext

    from textclf.approaches.llm import local_server as server_mod
    from textclf.approaches.llm.model_config import model_identity

    texts = ["a good film", "a bad film", "good good", "so bad"]
    local = ["llm=smollm2", f"llm.cache.dir={tmp_path / 'cache'}", "llm.retries.backoff=0.05"]
    with FaultServer() as a, FaultServer() as b:
        proj = make_project(tmp_path, texts, local + [f"llm.base_url={a.url}"])
        predict(proj)
        assert len(a.attempts) == 4 and timings(proj)["cache_hits"] == 0
        refit(proj, tmp_path, local + [f"llm.base_url={b.url}"])
        predict(proj)
        assert len(b.attempts) == 4 and timings(proj)["cache_hits"] == 0 and timings(proj)["requests"] == 4
        assert json.loads((proj / "models/llm/config.json").read_text())["model"]["base_url"] == b.url
        predict(proj)  # and the same server again: all from the cache
        assert len(b.attempts) == 4 and timings(proj)["cache_hits"] == 4
        # Then a normal run (base_url null: the server the stage starts, here fake server `a`
        # standing in for llama.cpp): none of the replies above is taken for its own.
        refit(proj, tmp_path, local)
        monkeypatch.setattr(server_mod, "LocalServer", lambda *args, **kw: nullcontext(a.url))
        predict(proj)
        assert len(a.attempts) == 8 and timings(proj)["cache_hits"] == 0 and timings(proj)["requests"] == 4
    from test_llm_server import smollm2_cfg

    cfg = smollm2_cfg()
    assert sorted(model_identity(llm_settings(cfg, base_url=None), cfg)[0]) == ["name", "provider", "sha256"]


def test_cache_garbage_newer_and_legacy_files(tmp_path):
    path = tmp_path / "responses.sqlite"
    path.write_bytes(random.Random(0).randbytes(8192))
    with pytest.raises(RuntimeError, match=rf"{path}.*Delete it.*llm.cache.dir"):
        ResponseCache(path)
    # A file written before the version was recorded (user_version 0): adopted, keys and replies untouched.
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
    db.execute("INSERT INTO responses VALUES ('k', '{\"text\": \"positive\"}')")
    db.commit()
    db.close()
    c = ResponseCache(path)
    assert c.get("k") == {"text": "positive"} and c.keys() == {"k"}
    c.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.execute("PRAGMA user_version = 7")
    db.close()
    with pytest.raises(RuntimeError, match=rf"{path} has format version 7; this code reads version 1"):
        ResponseCache(path)


def test_a_damaged_cache_file_names_it_and_what_to_do(tmp_path):
    """A cache whose header is fine but whose pages are damaged opens; the damage shows when
    rows are read: an error naming the file and what to do, not a bare 'malformed'."""
    path = tmp_path / "responses.sqlite"
    c = ResponseCache(path)
    for i in range(2000):
        c.put(f"k{i}", {"text": "x" * 200})
    c.close()
    data, rng = bytearray(path.read_bytes()), random.Random(0)
    for page in range(2, len(data) // 4096):  # keep the header page and the schema
        data[page * 4096 + 100:page * 4096 + 400] = rng.randbytes(300)
    path.write_bytes(bytes(data))
    c = ResponseCache(path)
    with pytest.raises(RuntimeError, match=rf"{path} is damaged \(database disk image is malformed\)\. Delete it"):
        c.keys()
    c.close()


def test_a_garbage_cache_file_stops_the_stage_naming_it(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "responses.sqlite").write_bytes(b"\x00garbage" * 1000)
    with FaultServer() as srv:
        proj = make_project(tmp_path, ["a good film"], overrides(srv.url, cache))
        with pytest.raises(RuntimeError, match=rf"{cache / 'responses.sqlite'} is unreadable"):
            predict(proj)
        assert not srv.attempts


# ---------------------------------------------------------------- hardening: hostile settings

@pytest.mark.parametrize("url", ["https://api.groq.com", "https://example.com:8443/x", "http://127.0.0.1:8000",
                                 "http://127.9.9.9", "http://[::1]:8080", "http://localhost:1", "HTTP://LOCALHOST:2"])
def test_base_url_accepted(url):
    from textclf.approaches.llm.policy import check_base_url

    check_base_url(url)


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8000", "http://0.0.0.0:8000",
                                 "http://localhost.evil.example", "http://127.0.0.1.nip.io", "ftp://127.0.0.1",
                                 "127.0.0.1:8000", "https://", "file:///etc/passwd"])
def test_base_url_refused(url):
    from textclf.approaches.llm.policy import check_base_url

    with pytest.raises(ValueError, match="https://"):
        check_base_url(url)


def test_hostile_base_url_and_key_variable_are_refused_at_fit(tmp_path, monkeypatch):
    from textclf.approaches.llm.policy import api_key

    def groq(**kw):
        return llm_settings(provider="groq", **kw)

    with pytest.raises(ValueError, match="llm.base_url='http://example.com'"):
        make_project(tmp_path / "a", ["x"], [*FAST, "llm.base_url=http://example.com"])
    # The schema's KeyVar refuses it (at compose and wherever the group is read).
    with pytest.raises(ValueError, match="api_key_env.*'AWS_SECRET_ACCESS_KEY'.*GROQ_API_KEY, TEXTCLF_LLM_API_KEY"):
        make_project(tmp_path / "b", ["x"], [*FAST, "llm.api_key_env=AWS_SECRET_ACCESS_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    with pytest.raises(ValueError, match="api_key_env"):
        api_key(groq(api_key_env="AWS_SECRET_ACCESS_KEY"), tmp_path)
    monkeypatch.setenv("TEXTCLF_LLM_API_KEY", "other-key")
    assert api_key(groq(api_key_env="TEXTCLF_LLM_API_KEY"), tmp_path) == "other-key"
    assert api_key(groq(api_key_env="GROQ_API_KEY"), tmp_path) == "test-key-not-secret"


def test_the_groq_key_is_only_sent_to_groqs_host(tmp_path, monkeypatch):
    """GROQ_API_KEY goes to api.groq.com only: provider=groq at another base_url (https or
    loopback) is refused at fit and at predict unless its key comes from TEXTCLF_LLM_API_KEY,
    which is then what the server receives; with base_url null the SDK is given Groq's URL,
    so GROQ_BASE_URL in the environment cannot redirect the key."""
    import groq

    from textclf.approaches.llm.policy import GROQ_URL, api_key
    from textclf.approaches.llm.transport import endpoint
    from textclf.params import compose

    def settings(**kw):
        return llm_settings(**kw)

    monkeypatch.setenv("GROQ_API_KEY", "gsk-groq-only")
    monkeypatch.setenv("TEXTCLF_LLM_API_KEY", "key-for-the-other-server")
    for url in ("https://evil.example", "https://api.groq.com.evil.example/openai", "http://127.0.0.1:9"):
        with pytest.raises(ValueError, match="GROQ_API_KEY is only sent to api.groq.com.*TEXTCLF_LLM_API_KEY"):
            api_key(settings(provider="groq", base_url=url), tmp_path)
        assert api_key(settings(provider="groq", base_url=url, api_key_env="TEXTCLF_LLM_API_KEY"),
                       tmp_path) == "key-for-the-other-server"
    assert api_key(settings(provider="groq", base_url="https://api.groq.com"), tmp_path) == "gsk-groq-only"
    assert api_key(settings(provider="local", base_url="https://evil.example"), tmp_path) == "no-key-needed"

    texts = ["a good film", "a bad film"]
    fake = [f for f in overrides("URL", tmp_path / "cache") if not f.startswith("llm.api_key_env")]
    with FaultServer() as srv:
        with pytest.raises(ValueError, match=r"llm.base_url='http://127.0.0.1:\d+' is not Groq's API"):
            make_project(tmp_path / "a", texts, [f.replace("URL", srv.url) for f in fake])
        proj = make_project(tmp_path / "b", texts, overrides(srv.url, tmp_path / "cache"))
        predict(proj)
        assert srv.auth == ["Bearer key-for-the-other-server"] * 2
        # params edited after fit (no refit): refused at predict too, before any request.
        compose(proj, ["data.source=local", f"data.local_dir={tmp_path / 'b' / 'ds'}", "data.name=tiny",
                       *[f.replace("URL", srv.url) for f in fake], f"llm.cache.dir={tmp_path / 'other'}"])
        with pytest.raises(ValueError, match="GROQ_API_KEY is only sent to api.groq.com"):
            predict(proj)
        assert len(srv.auth) == 2

        monkeypatch.setenv("GROQ_BASE_URL", srv.url)  # read by the groq SDK when given no base_url
        with endpoint(settings(provider="groq", base_url=None), {}) as url:
            assert url == GROQ_URL
            assert groq.Groq(api_key="k", base_url=url).base_url.host == "api.groq.com"


# ---------------------------------------------------------------- the prompt and k chosen on validation

MARKED = "[careful] Answer with one of: {labels}."  # FaultServer(marker="[careful]") is right only under it
CHOOSE = [f"llm.select.label_system=['{MARKED}']"]


def fit_files(proj) -> dict[str, bytes]:
    return {f: (proj / "models/llm" / f).read_bytes() for f in ("config.json", "selection.json")}


def written_prompt(proj) -> str:
    import yaml

    return yaml.safe_load((proj / "params.yaml").read_text())["llm"]["prompts"]["label_system"]


def test_fit_chooses_the_prompt_and_k_on_validation_and_predict_reuses_its_replies(tmp_path):
    texts = [f"film {i} {'good' if i % 2 else 'bad'}" for i in range(6)]
    with FaultServer(marker="[careful]") as srv:
        proj = make_project(tmp_path, texts, [*overrides(srv.url, tmp_path / "cache"), *CHOOSE,
                                              "llm.select.few_shot_k=[2]", "approaches.llm.splits=[validation,test]"])
        # 2 prompts x 2 k, each on the 4 validation rows: every request at fit, none cached before.
        assert len(srv.attempts) == 16 and all(t.startswith("Review: val ") for t in srv.texts())
        assert sorted(len(b["messages"]) for b in srv.bodies) == [2] * 8 + [6] * 8  # k=2: two user/assistant pairs
        sel = json.loads((proj / "models/llm/selection.json").read_text())
        assert [(c["label_system"], c["few_shot_k"]) for c in sel["candidates"]] == [
            (written_prompt(proj), 0), (written_prompt(proj), 2), (MARKED, 0), (MARKED, 2)]
        assert [c["validation_macro_f1"] for c in sel["candidates"]] == [0.0, 0.0, 1.0, 1.0]
        assert [c["unparseable"] for c in sel["candidates"]] == [0, 0, 0, 0]
        # 2 and 3 tie: the earlier (fewer examples) wins.
        assert sel["chosen"] == 2 and sel["validation_macro_f1"] == 1.0 and sel["metric"] == "validation macro-F1"
        assert sel["rows"] == {"validation_rows": 4, "used": 4, "drawn": "every validation row"}
        conf = json.loads((proj / "models/llm/config.json").read_text())
        assert conf["prompts"]["label_system"] == MARKED and conf["shots"] == []

        n = len(srv.attempts)
        predict(proj)
        # The chosen candidate's validation replies came from the cache: only the test rows were asked.
        assert len(srv.attempts) == n + len(texts) and all(t.startswith("Review: film ") for t in srv.texts()[n:])
        t = json.loads((proj / "metrics/timings/predict_llm.json").read_text())["details"]
        assert (t["validation"]["requests"], t["validation"]["cache_hits"]) == (0, 4)
        assert all(MARKED.split(" ")[0] in b["messages"][0]["content"] for b in srv.bodies[n:])
    m = json.loads((proj / "metrics/llm.json").read_text())
    assert m["accuracy"] == 1.0 and m["details"]["test"]["selection"] == sel
    assert "selection" not in m["details"].get("validation", {})
    assert m["labelled"] == {"splits": ["validation"], "rows": 2}


def test_the_choice_reads_validation_only(tmp_path):
    from textclf.stages import fit as fit_stage

    texts = [f"film {i} {'good' if i % 2 else 'bad'}" for i in range(8)]
    prepared = tmp_path / "proj/data/prepared"

    def relabel(split: str, flip: bool, reverse: bool) -> None:
        rows = read_jsonl(prepared / f"{split}.jsonl")
        rows = [{"text": r["text"], "label": 1 - r["label"] if flip else r["label"]} for r in rows]
        (prepared / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (rows[::-1] if reverse else rows)))

    with FaultServer(marker="[careful]") as srv:
        proj = make_project(tmp_path, texts, [*overrides(srv.url, tmp_path / "cache"), *CHOOSE])
        first = fit_files(proj)
        assert json.loads(first["selection.json"])["chosen"] == 1
        # Test labels flipped (a choice that read them would take the written prompt) and rows reordered.
        relabel("test", flip=True, reverse=True)
        in_process(proj, fit_stage.main, ["llm"])
        assert fit_files(proj) == first
        # ... and with no test split at all.
        (prepared / "test.jsonl").unlink()
        in_process(proj, fit_stage.main, ["llm"])
        assert fit_files(proj) == first
        # The control: the validation labels do decide.
        relabel("validation", flip=True, reverse=False)
        in_process(proj, fit_stage.main, ["llm"])
    sel = json.loads((proj / "models/llm/selection.json").read_text())
    assert sel["chosen"] == 0 and [c["validation_macro_f1"] for c in sel["candidates"]] == [1.0, 0.0]
    assert json.loads((proj / "models/llm/config.json").read_text())["prompts"]["label_system"] == written_prompt(proj)


@pytest.mark.parametrize("select", [[], ["llm.select.few_shot_k=[0]", "llm.select.max_rows=2"]])
def test_nothing_to_choose_makes_no_request_at_fit(tmp_path, select):
    """The defaults (or candidates that only repeat the settings): no request at fit, config.json
    as before selection existed, the record says so, and neither the metrics nor the labelled
    rows change."""
    from textclf.approaches.llm import selection

    texts = ["a good film", "a bad film"]
    with FaultServer(marker="[careful]") as srv:
        proj = make_project(tmp_path, texts, [*overrides(srv.url, tmp_path / "cache"), *select])
        assert srv.attempts == []
        predict(proj)
        assert len(srv.attempts) == 2
    sel = json.loads((proj / "models/llm/selection.json").read_text())
    assert sel == {"rule": selection.NOTHING, "chosen": 0,
                   "candidates": [{"label_system": written_prompt(proj), "few_shot_k": 0}]}
    conf = json.loads((proj / "models/llm/config.json").read_text())
    assert sorted(conf) == ["constrained", "constraint", "decoding", "labels", "mode", "mode_reason", "mode_requested",
                            "model", "positive", "prompts", "shots", "threshold", "truncation"]
    assert conf["prompts"]["label_system"] == written_prompt(proj)
    m = json.loads((proj / "metrics/llm.json").read_text())
    assert "selection" not in m["details"]["test"] and m["labelled"] == {"splits": [], "rows": 0}
    assert m["accuracy"] == 0.0  # the fake model is wrong under the written prompt: it was not replaced


def test_a_row_failing_during_the_choice_fails_the_fit(tmp_path):
    from textclf.approaches.llm.approach import FailedRows

    val = ["v0 bad", "v1 good", "v2 good [dead]", "v3 bad"]
    with FaultServer(marker="[careful]") as srv:
        with pytest.raises(FailedRows, match=r"llm/selection candidate 0 \(validation rows\): 1 of 4 rows failed"):
            make_project(tmp_path, ["a good film"], [*overrides(srv.url, tmp_path / "cache"), *CHOOSE], val_texts=val)
        # it stopped at the first candidate with a failure: the second was never asked
        assert all(MARKED not in b["messages"][0]["content"] for b in srv.bodies)
    failed = read_jsonl(tmp_path / "proj/logs/llm/llm/selection.failed.jsonl")
    assert [(f["row"], f["candidate"]) for f in failed] == [(2, 0)] and "http_503" in failed[0]["error"]
    assert not (tmp_path / "proj/models/llm/config.json").exists()


def test_selection_candidates_and_rows():
    from textclf.approaches.llm import selection

    s = llm_settings(few_shot={"k": 4}, select={"label_system": ["B", "One of: {labels}", "B"], "few_shot_k": [0, 4, 8]})
    assert [(c.label_system, c.few_shot_k) for c in selection.candidates(s)] == [
        ("One of: {labels}", 4), ("One of: {labels}", 0), ("One of: {labels}", 8), ("B", 4), ("B", 0), ("B", 8)]
    with pytest.raises(ValueError, match="llm.mode=score asks with prompts.score_system"):
        selection.candidates(llm_settings(mode="score", select={"label_system": ["B"]}))
    assert len(selection.candidates(llm_settings(mode="score", select={"few_shot_k": [0, 2]}))) == 2
    with pytest.raises(ValueError, match=r"llm.select.max_rows must be >= 1"):
        selection.candidates(llm_settings(select={"label_system": ["B"], "max_rows": 0}))
    labels = [0] * 90 + [1] * 10
    idx, drawn = selection.rows(llm_settings(select={"max_rows": 20, "seed": 3}), labels)
    assert len(idx) == 20 and sum(labels[i] for i in idx) == 2 and drawn["used"] == 20 and drawn["seed"] == 3
    assert idx == selection.rows(llm_settings(select={"max_rows": 20, "seed": 3}), labels)[0]
    assert idx != selection.rows(llm_settings(select={"max_rows": 20, "seed": 4}), labels)[0]
    assert selection.best([0.5, 0.7, 0.7, 0.1]) == 1
