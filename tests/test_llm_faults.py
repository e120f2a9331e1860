"""A faulty provider at concurrency (issue 23): 2,000 rows at concurrency 8 through the
llm approach's client path (llm_helpers.label_rows: the functions predict_texts calls, in a
new process each run) against a Groq-compatible server on 127.0.0.1 answering a seeded mix
of faults per attempt (llm_helpers.FlakyProvider: ~70% ok, 10% 429 with Retry-After 0 or 1 s,
10% 503, 5% no answer past the client's 0.3 s timeout, 5% a truncated body); then the same
with the labelling process SIGKILLed half way and resumed. scripts/bench_llm_faults.py runs
the same scenarios and records their figures (results/bench/reliability.json)."""

from __future__ import annotations

import re
import signal
from collections import Counter

import pytest

from llm_helpers import FAULT_KIND, FlakyProvider, faulty_run, killed_and_resumed

ROWS, CONCURRENCY, RETRIES = 2000, 8, 3
REASON = re.compile(rf"^(\w+) after {RETRIES + 1} attempt\(s\): ")


@pytest.fixture(autouse=True)
def no_groq_env(monkeypatch):
    """The client reads GROQ_BASE_URL and GROQ_API_KEY if set: none from the caller here."""
    monkeypatch.delenv("GROQ_BASE_URL", raising=False)
    monkeypatch.delenv("GROQ_API_KEY", raising=False)


def check_every_row_once(result: dict, n: int) -> tuple[set[int], set[int]]:
    """Every row labelled (correctly: the fake model says positive for odd rows) or failed, once."""
    labelled = {int(i): p for i, p in result["labelled"].items()}
    failed = [f["row"] for f in result["failed"]]
    assert len(failed) == len(set(failed)), "a row failed twice"
    assert not labelled.keys() & set(failed), "a row both labelled and failed"
    assert labelled.keys() | set(failed) == set(range(n)), "rows lost"
    assert result["rows"] == n and len(labelled) + len(failed) == n
    wrong = {i: p for i, p in labelled.items() if p != i % 2}
    assert not wrong, f"rows given another row's label: {dict(list(wrong.items())[:5])}"
    return set(labelled), set(failed)


def check_failure_reasons(result: dict, paid: list) -> Counter:
    """Each failed row's reason names its last attempt's error, the one the server sent (or a
    timeout: a reply later than the client's timeout on a loaded machine), after all attempts."""
    last = {}
    for row, attempt, fault, _, _ in paid:
        if attempt >= last.get(row, (-1, None))[0]:
            last[row] = (attempt, fault)
    reasons = Counter()
    for f in result["failed"]:
        m = REASON.match(f["error"])
        assert m, f["error"]
        kind = m.group(1)
        reasons[kind] += 1
        assert kind in (FAULT_KIND.get(last[f["row"]][1]), "timeout"), (f, last[f["row"]])
        assert sum(r == f["row"] for r, *_ in paid) <= RETRIES + 1
    return reasons


def test_every_row_is_labelled_or_failed_with_its_reason_and_a_rerun_asks_only_the_failed(tmp_path):
    with FlakyProvider(seed=0) as srv:
        out = faulty_run(srv, tmp_path, ROWS, CONCURRENCY)
    first, again = out["first"], out["again"]
    paid, paid_again = out["paid_first"], out["paid_again"]
    # The mix was served: every kind of fault, ~30% of the first attempts.
    faults = Counter(f for _, attempt, f, _, _ in paid if attempt == 0)
    assert set(faults) == {"ok", "429", "503", "hang", "malformed"} and 0.6 < faults["ok"] / ROWS < 0.8, faults

    _, failed = check_every_row_once(first, ROWS)
    assert failed, "no row exhausted its retries: the mix did not test failing rows"
    check_failure_reasons(first, paid)
    # What the server was paid for is no more than the rows plus the retries the client reports.
    st = first["stats"]
    assert st["cache_hits"] == 0 and st["requests"] == ROWS + st["retries"]
    assert len(paid) <= ROWS + st["retries"], (len(paid), st)
    assert sum(st["errors"].values()) == st["requests"] - ROWS + len(failed)

    # The rerun: the answered rows come from the cache; exactly the failed ones are asked again.
    check_every_row_once(again, ROWS)
    assert {row for row, *_ in paid_again} == failed
    assert again["stats"]["cache_hits"] == ROWS - len(failed)
    assert len(paid_again) <= len(failed) + again["stats"]["retries"]


def test_a_sigkill_half_way_then_resume_asks_nothing_already_answered(tmp_path):
    with FlakyProvider(seed=1) as srv:
        out = killed_and_resumed(srv, tmp_path, ROWS, kill_after=ROWS // 2, concurrency=CONCURRENCY)
    assert out["returncode"] == -signal.SIGKILL, "the labelling process ended before it was killed"
    cached = out["cached_at_kill"]
    assert 0 < len(cached) < ROWS
    # Replies received but not yet stored at the kill: at most one per worker (asked again, paid twice).
    answered_before = {row for row, _, fault, _, _ in out["paid_killed"] if fault == "ok"}
    assert cached <= answered_before and len(answered_before - cached) <= CONCURRENCY

    resumed = out["resumed"]
    _, failed = check_every_row_once(resumed, ROWS)
    check_failure_reasons(resumed, out["paid_killed"] + out["paid_resumed"])
    asked = {row for row, *_ in out["paid_resumed"]}
    assert not asked & cached, f"rows answered in the cache were paid for again: {sorted(asked & cached)[:10]}"
    assert asked == set(range(ROWS)) - cached
    st = resumed["stats"]
    assert st["cache_hits"] == len(cached) and st["requests"] == ROWS - len(cached) + st["retries"]
    assert len(out["paid_resumed"]) <= ROWS - len(cached) + st["retries"]
