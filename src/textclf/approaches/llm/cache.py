"""On-disk response cache: SQLite, one committed transaction per response, so a run
killed with SIGKILL keeps every response it had received and the next run resumes.

It lives outside DVC's outputs (default ~/.cache/textclf/llm, or $TEXTCLF_CACHE/llm)
and is shared by runs, worktrees and experiments. Only successful responses are stored;
failed rows are retried on the next run.

The file's format version is SQLite's `user_version`: 0 is a file written before it was
recorded (the same format: adopted as 1, its keys and replies untouched); a newer version
or a file that is not this cache is refused with what to do."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = 1  # PRAGMA user_version of the files this code writes
COLUMNS = ["key", "response"]


def request_key(request: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of what determines the answer: model identity,
    messages (prompt, few-shot examples and text) and decoding parameters."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=60)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:  # not SQLite at all ("file is not a database"), or damaged
            self._db.close()
            raise RuntimeError(f"LLM reply cache {path} is unreadable ({exc}). Delete it (its replies will be "
                               "requested again) or set llm.cache.dir to another folder.") from None
        except RuntimeError:
            self._db.close()
            raise

    def _open(self) -> None:
        # WAL: readers never block the writer; synchronous=NORMAL is durable across a
        # process kill (not a power cut), which is what resuming needs.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("BEGIN IMMEDIATE")  # one transaction: two processes opening a new file agree
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA:
                raise RuntimeError(f"LLM reply cache {self.path} has format version {version}; this code reads "
                                   f"version {SCHEMA}. Use the newer textclf that wrote it, or set llm.cache.dir "
                                   "to another folder.")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
            columns = [c[1] for c in self._db.execute("PRAGMA table_info(responses)")]
            if columns != COLUMNS:
                raise RuntimeError(f"LLM reply cache {self.path}: table `responses` has columns {columns}, not "
                                   f"{COLUMNS}. Delete the file (its replies will be requested again) or set "
                                   "llm.cache.dir to another folder.")
            if version == 0:  # new, or written before the version was recorded: same format
                self._db.execute(f"PRAGMA user_version = {SCHEMA}")
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    @contextmanager
    def _use(self) -> Iterator[None]:
        """Damaged pages surface only when read ("database disk image is malformed"): name the
        file and what to do. OperationalError (disk full, locked) is not damage: raised as is."""
        with self._lock:
            try:
                yield
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:
                raise RuntimeError(f"LLM reply cache {self.path} is damaged ({exc}). Delete it (and its -wal/-shm "
                                   "files; its replies will be requested again) or set llm.cache.dir to another "
                                   "folder.") from None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._use():
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, response: Mapping[str, Any]) -> None:
        with self._use():
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, json.dumps(response, sort_keys=True)))
            self._db.commit()

    def keys(self) -> set[str]:
        with self._use():
            return {k for (k,) in self._db.execute("SELECT key FROM responses")}

    def close(self) -> None:
        with self._lock:
            self._db.close()
