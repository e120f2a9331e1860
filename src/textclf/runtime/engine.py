"""Where batch inference runs: in this process (`engine=local`) or on Ray Data (`engine=ray`).

Both engines run the same planned batches, so they compute the same numbers: the caller
cuts its rows into model batches (the order and padding its local loop uses), and each
batch goes, whole, to a worker. Ray Data runs the workers as an actor pool (one model load
per actor, `num_gpus` per actor on a GPU) and hands back one row per input row, tagged with
its index; results are put back in row order here, whichever actor finished first.

A worker is built from a picklable factory (a `functools.partial` of a module-level
function): only the factory's arguments (a model spec, a folder, settings) travel to Ray's
workers, and each worker resolves its model itself, with the same resolver and sha256 check.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from textclf.core import settings as schema
from textclf.core.settings import EngineName

log = logging.getLogger(__name__)

# A worker maps one batch of texts to one row of floats per text.
Worker = Callable[[list[str]], np.ndarray]
# engine=ray: times an actor lost with its node is restarted on another node, and times a batch
# it was running is re-sent (see _map_ray).
ACTOR_RESTARTS = 3
BATCH_RETRIES = 3


def check_engine(engine: schema.Engine | Mapping[str, Any] | None) -> schema.Engine:
    """The `engine` settings, typed (a params.yaml mapping is checked against the schema; None:
    the schema's defaults, engine=local); a clear error for what is off."""
    e = engine if isinstance(engine, schema.Engine) else schema.typed(schema.Engine, engine, prefix="engine")
    for key in ("actors", "cpus_per_actor"):
        if getattr(e, key) <= 0:
            raise ValueError(f"engine.{key} must be a positive number, not {getattr(e, key)!r}")
    return e


def map_batches(texts: Sequence[str], batches: Sequence[np.ndarray], make_worker: Callable[[], Worker],
                engine: schema.Engine | Mapping[str, Any] | None = None, device: str = "cpu", desc: str = "Batches",
                progress: bool = True) -> np.ndarray:
    """(len(texts), d) float array: row i is the worker's output for texts[i], computed in
    the given batches (each an array of row indices) on the configured engine."""
    e = check_engine(engine)
    if e.name is EngineName.ray:
        return _map_ray(texts, batches, make_worker, e, device, desc, progress)
    worker = make_worker()
    out: np.ndarray | None = None
    for idx in tqdm(batches, desc=desc, disable=not progress):
        vals = np.asarray(worker([texts[i] for i in idx]))
        if out is None:
            out = np.zeros((len(texts), vals.shape[1]), dtype=vals.dtype)
        out[idx] = vals
    if out is None:
        raise ValueError("nothing to run: no batches")
    return out


class _Actor:
    """One model per actor; each call gets whole planned batches (Ray batch_size=1 row =
    1 model batch) and returns one output row per text, tagged with the text's index."""

    def __init__(self, make_worker: Callable[[], Worker]):
        self.worker = make_worker()

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, vals = [], []
        for idx, texts in zip(batch["rows"], batch["texts"]):
            rows.append(np.asarray(idx, dtype=np.int64))
            vals.append(np.asarray(self.worker([str(t) for t in texts])))
        return {"row": np.concatenate(rows), "value": np.concatenate(vals)}


@contextlib.contextmanager
def ray_runtime(engine: schema.Engine | Mapping[str, Any]) -> Iterator[None]:
    """Connect to `engine.address` (or $RAY_ADDRESS); with neither, start a local Ray
    runtime on 127.0.0.1 for the block and shut it down after. The textclf package
    travels to the workers (runtime_env py_modules); its dependencies and the model
    packages must be installed on them (docs/engine.md)."""
    import ray

    import textclf

    if ray.is_initialized():  # a caller's runtime (a notebook, a test): use it as it is
        yield
        return
    engine = check_engine(engine)
    address = engine.address or os.environ.get("RAY_ADDRESS")  # null: the environment's cluster, if any
    runtime_env = {"py_modules": [str(Path(textclf.__file__).parent)],
                   # Workers log at WARNING: model loading chatter would flood the driver's console.
                   "env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if address:
        log.info("Connecting to the Ray cluster at %s", address)
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    else:
        cpus = int(engine.num_cpus or os.cpu_count() or 1)  # null: every core
        log.info("Starting a local Ray runtime (127.0.0.1, %d CPUs)", cpus)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 runtime_env=runtime_env, log_to_driver=True)
    try:
        yield
    finally:
        ray.shutdown()


def _map_ray(texts: Sequence[str], batches: Sequence[np.ndarray], make_worker: Callable[[], Worker],
             e: schema.Engine, device: str, desc: str, progress: bool) -> np.ndarray:
    try:
        import ray
        import ray.data
    except ImportError:
        raise RuntimeError("engine=ray needs Ray Data: pip install -e '.[ray]' (or use engine=local)") from None
    with ray_runtime(e):
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        items = [{"rows": np.asarray(idx, dtype=np.int64), "texts": [texts[i] for i in idx]} for idx in batches]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), 200) or 1)
        gpus = e.gpus_per_actor if device == "cuda" else 0
        log.info("%s on Ray Data: %d batches, %d actors (%s CPU, %s GPU each)", desc, len(items), e.actors,
                 e.cpus_per_actor, gpus)
        # Fault tolerance, set here rather than left to Ray Data's defaults (unbounded restarts and
        # retries, which wait forever for a lost node's resources): an actor whose node dies is
        # restarted elsewhere up to ACTOR_RESTARTS times and its unfinished batches are re-sent
        # (a batch is a pure function of its texts, so a re-run gives the same rows); past that
        # the run fails, naming the lost node (_node_loss). Rows are checked below either way.
        out_ds = ds.map_batches(_Actor, fn_constructor_args=(make_worker,), batch_size=1, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=e.actors),
                                num_cpus=e.cpus_per_actor, num_gpus=gpus,
                                max_restarts=ACTOR_RESTARTS, max_task_retries=BATCH_RETRIES)
        out: np.ndarray | None = None
        filled = np.zeros(len(texts), dtype=np.int64)
        try:
            for part in out_ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows, vals = np.asarray(part["row"], dtype=np.int64), np.asarray(part["value"])
                if out is None:
                    out = np.zeros((len(texts), vals.shape[1]), dtype=vals.dtype)
                out[rows] = vals  # back in row order, whichever actor finished first
                np.add.at(filled, rows, 1)
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f"{desc} on Ray failed: {_node_loss(ray)}{type(exc).__name__}: {str(exc)[:2000]}") from exc
    # Every row exactly once: a lost or twice-delivered batch is an error, never a silent gap.
    missing, twice = np.flatnonzero(filled == 0), np.flatnonzero(filled > 1)
    if out is None or len(missing) or len(twice):
        raise RuntimeError(f"Ray returned {int((filled > 0).sum())} of {len(texts)} rows: {len(missing)} missing "
                           f"(first: {missing[:5].tolist()}), {len(twice)} more than once (first: {twice[:5].tolist()})")
    return out


def _node_loss(ray) -> str:
    """'lost node(s) <id> (<ip>): ' for the cluster's dead nodes, '' when none (or unknown)."""
    try:
        dead = [f"{n['NodeID'][:12]} ({n.get('NodeManagerAddress')})" for n in ray.nodes() if not n.get("Alive")]
    except Exception:  # noqa: BLE001 - only for the message: the original error is raised regardless
        return ""
    return f"the cluster lost node(s) {', '.join(dead)} during the run; " if dead else ""
