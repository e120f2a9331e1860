"""Send chat requests through the groq SDK: response cache, bounded concurrency, a
requests-per-minute limit, and retries with exponential backoff and jitter on 429, 5xx,
timeouts, connection errors and malformed replies, honouring Retry-After up to
`retries.max_backoff` (a server asking for an hour does not stall a worker for an hour).

Every row ends as a response (cached or new) or as a failure with its error; failures
are never cached, so the next run retries only them. Any other error (the cache's disk
full, Ctrl-C) stops the run at once: queued requests are cancelled, not sent."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import groq
from tqdm.auto import tqdm

from textclf.approaches.llm.cache import ResponseCache, request_key
from textclf.approaches.llm.settings import Settings

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}


def quiet_http_logs() -> None:
    """httpx logs every request at INFO (a line per row, through the progress bar): keep
    its and httpcore's warnings only. Set here, not in the shared logging set-up."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class Policy:
    """Operational settings: they change how fast rows arrive, never what they say. The values
    come from the llm group (from_settings: its defaults are settings.py's and conf/'s)."""
    concurrency: int
    rpm: float | None  # requests per minute, None: unlimited
    timeout: float  # seconds per request
    max_retries: int
    backoff: float  # first retry waits about this long, doubling each time
    max_backoff: float
    seed: int = 0  # jitter's random stream (not a setting)

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        r = s.retries
        p = cls(concurrency=s.concurrency, rpm=s.rpm, timeout=s.timeout, max_retries=r.max, backoff=r.backoff,
                max_backoff=r.max_backoff)
        if (p.concurrency < 1 or (p.rpm is not None and p.rpm <= 0) or p.max_retries < 0 or p.timeout <= 0
                or p.backoff < 0 or p.max_backoff <= 0):
            raise ValueError(f"llm: concurrency >= 1, rpm > 0 or null, retries.max >= 0, timeout > 0, "
                             f"retries.backoff >= 0, retries.max_backoff > 0; got {p}")
        return p


@dataclass
class Outcome:
    response: dict[str, Any] | None = None  # normalised reply: text, top_logprobs, usage
    error: str | None = None
    cached: bool = False


@dataclass
class Stats:
    """What this run did (differs between a fresh and a cached run of the same params)."""
    requests: int = 0  # HTTP attempts, retries included
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0  # of the requests this run made
    completion_tokens: int = 0
    errors: Counter = field(default_factory=Counter)  # attempt errors by kind
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart, across threads."""

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class Malformed(Exception):
    """A 2xx reply that is not a chat completion we can read."""


def normalise(completion: Any) -> dict[str, Any]:
    """The parts of a chat completion we keep (and cache)."""
    try:
        choice = completion.choices[0]
        text = choice.message.content
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
        top = []
        lp = getattr(choice, "logprobs", None)
        if lp is not None and lp.content:
            top = [[t.token, float(t.logprob)] for t in (lp.content[0].top_logprobs or [])]
        usage = completion.usage
        return {"text": text, "top_logprobs": top,
                "usage": {"prompt_tokens": int(usage.prompt_tokens or 0) if usage else 0,
                          "completion_tokens": int(usage.completion_tokens or 0) if usage else 0}}
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise Malformed(f"unreadable completion ({type(exc).__name__}: {exc}): {str(completion)[:200]!r}") from None


def classify(exc: BaseException) -> tuple[str, bool, float | None]:
    """(kind, retryable, Retry-After seconds) for an exception raised by a request."""
    if isinstance(exc, groq.APITimeoutError):
        return "timeout", True, None
    if isinstance(exc, groq.APIConnectionError):
        return "connection", True, None
    if isinstance(exc, groq.APIStatusError):
        status = exc.status_code
        retry = status in RETRYABLE_STATUS or status >= 500
        return f"http_{status}", retry, retry_after(exc.response.headers) if retry else None
    if isinstance(exc, (Malformed, json.JSONDecodeError, groq.APIResponseValidationError)):
        return "malformed", True, None
    return type(exc).__name__, False, None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt: int, policy: Policy, rng: random.Random, server_says: float | None) -> float:
    """Exponential backoff with 'equal jitter' (half fixed, half random); not shorter than
    the server's Retry-After, and never longer than `max_backoff` whatever the server says."""
    base = min(policy.max_backoff, policy.backoff * 2 ** attempt)
    delay = base / 2 + rng.uniform(0, base / 2)
    if server_says is not None:
        delay = max(delay, server_says)
    return min(delay, policy.max_backoff)


class FatalError(RuntimeError):
    """An error no retry fixes for any row (bad key, unknown model): stop the run."""


def send_with_retries(send: Callable[[], Any], policy: Policy, limiter: RateLimiter, stats: Stats,
                      rng: random.Random, stop: threading.Event | None = None) -> dict[str, Any]:
    """One reply, or RuntimeError after the retries; FatalError when no row can succeed.
    `stop` set (the run is stopping): no further attempt."""
    for attempt in range(policy.max_retries + 1):
        limiter.wait()
        if stop is not None and stop.is_set():
            raise RuntimeError("not sent: the run stopped")
        stats.add(requests=1)
        try:
            return normalise(send())
        except Exception as exc:  # noqa: BLE001 - classified below; unknown kinds are not retried
            kind, retryable, server_says = classify(exc)
            stats.error(kind)
            if kind in ("http_401", "http_403", "http_404"):
                raise FatalError(f"{kind}: {exc}") from None
            if not retryable or attempt == policy.max_retries:
                raise RuntimeError(f"{kind} after {attempt + 1} attempt(s): {str(exc)[:300]}") from None
            delay = backoff_delay(attempt, policy, rng, server_says)
            asked = "" if server_says is None else f"the server asked for {server_says:g} s (Retry-After), "
            log.warning("%s: %swaiting %.2f s before retry %d of %d (retries.max_backoff: %g s)", kind, asked, delay,
                        attempt + 1, policy.max_retries, policy.max_backoff)
            stats.add(retries=1)
            time.sleep(delay)
    raise AssertionError("unreachable")


def run(requests: Sequence[Mapping[str, Any]], send: Callable[[Mapping[str, Any]], Any], cache: ResponseCache | None,
        policy: Policy, desc: str = "llm") -> tuple[list[Outcome], Stats]:
    """One Outcome per request, in order. `send(request)` performs one API call.
    Identical requests are sent once. An exception other than a row's failure (the cache
    cannot write, KeyboardInterrupt) cancels every request not yet started and is re-raised."""
    quiet_http_logs()
    stats = Stats()
    keys = [request_key(r) for r in requests]
    by_key: dict[str, Outcome] = {}
    todo: dict[str, Mapping[str, Any]] = {}
    for key, req in zip(keys, requests):
        if key in by_key or key in todo:
            continue
        hit = cache.get(key) if cache else None
        if hit is not None:
            by_key[key] = Outcome(hit, cached=True)
        else:
            todo[key] = req
    stats.cache_hits = len(by_key)
    limiter = RateLimiter(policy.rpm)
    abort = threading.Event()
    seeds = random.Random(policy.seed)
    rngs = {key: random.Random(seeds.getrandbits(64)) for key in todo}

    def work(key: str) -> Outcome:
        if abort.is_set():
            return Outcome(error="not sent: the run stopped after a fatal error")
        try:
            resp = send_with_retries(lambda: send(todo[key]), policy, limiter, stats, rngs[key], abort)
        except FatalError as exc:
            abort.set()
            return Outcome(error=str(exc))
        except RuntimeError as exc:
            return Outcome(error=str(exc))
        try:
            if cache:
                cache.put(key, resp)  # committed now: survives a kill of this process
        except BaseException:
            abort.set()  # stop the other workers now, before the main thread sees this
            raise
        stats.add(prompt_tokens=resp["usage"]["prompt_tokens"], completion_tokens=resp["usage"]["completion_tokens"])
        return Outcome(resp)

    if todo:
        log.info("%s: %d cached, %d to request (concurrency %d)", desc, len(by_key), len(todo), policy.concurrency)
        # Not `with ThreadPoolExecutor()`: its exit waits for every queued request to be
        # sent (and paid for) before an error or Ctrl-C gets through.
        pool = ThreadPoolExecutor(max_workers=policy.concurrency)
        try:
            with tqdm(total=len(todo), desc=desc, unit="req") as bar:
                futures = {pool.submit(work, key): key for key in todo}
                for fut in as_completed(futures):
                    by_key[futures[fut]] = fut.result()
                    bar.update()
        except BaseException:
            abort.set()  # requests in flight finish; no worker starts another attempt
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return [by_key[k] for k in keys], stats
