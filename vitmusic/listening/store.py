"""Ratings of a listening test in SQLite: one row per (participant, trial, stimulus), written as given.

The database lives at ``OUT/ratings.sqlite`` (outside the served folder). It runs in WAL mode so readers never
block the writer; every request opens its own connection (``sqlite3`` connections are not shared between
the server's threads) and writes inside ``BEGIN IMMEDIATE`` with a busy timeout, so concurrent submissions
queue instead of failing. A re-submitted trial replaces its earlier answers (``INSERT ... ON CONFLICT DO
UPDATE``). The database records the sha256 of the public manifest it was created for, so ratings can never be
joined with a different (regenerated) stimulus set.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from vitmusic.errors import DataError

DB_NAME = "ratings.sqlite"
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS responses (
    participant TEXT NOT NULL,
    trial INTEGER NOT NULL,
    stimulus_id TEXT NOT NULL,
    position TEXT NOT NULL,
    value REAL NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (participant, trial, stimulus_id)
);
CREATE TABLE IF NOT EXISTS submissions (
    participant TEXT NOT NULL,
    trial INTEGER NOT NULL,
    submitted_at TEXT NOT NULL,
    PRIMARY KEY (participant, trial)
);
"""


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RatingStore:
    """The ratings database of one test folder.

    Args:
        path: the SQLite file (created with its schema when missing).
        manifest_sha256: digest of the public manifest; a database made for another manifest is refused.

    Raises:
        DataError: the database belongs to a different manifest or cannot be opened.
    """

    def __init__(self, path: str | os.PathLike, manifest_sha256: str):
        self.path = Path(path)
        try:
            with self.connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(_SCHEMA)
                con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('manifest_sha256', ?)",
                            (manifest_sha256,))
                stored = con.execute("SELECT value FROM meta WHERE key = 'manifest_sha256'").fetchone()[0]
        except sqlite3.Error as e:
            raise DataError(f"{self.path}: cannot open the ratings database ({e})") from e
        if stored != manifest_sha256:
            raise DataError(f"{self.path} holds ratings of a different stimulus set (the manifest changed); "
                            "move it away or serve the stimuli it was made for")

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection (autocommit mode; callers open transactions), closed on exit."""
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            yield con
        finally:
            con.close()

    def journal_mode(self) -> str:
        with self.connect() as con:
            return str(con.execute("PRAGMA journal_mode").fetchone()[0])

    def submit(self, participant: str, trial: int, values: Mapping[str, tuple[str, float]]) -> None:
        """Store one trial's answers: ``values`` = stimulus_id -> (position, value), in one transaction."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(
                    "INSERT INTO responses (participant, trial, stimulus_id, position, value, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (participant, trial, stimulus_id) DO UPDATE SET "
                    "position = excluded.position, value = excluded.value, updated_at = excluded.updated_at",
                    [(participant, trial, sid, pos, float(v), now) for sid, (pos, v) in values.items()],
                )
                con.execute(
                    "INSERT INTO submissions (participant, trial, submitted_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (participant, trial) DO UPDATE SET submitted_at = excluded.submitted_at",
                    (participant, trial, now),
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def answers(self, participant: str) -> dict[int, dict[str, float]]:
        """A participant's stored answers: trial -> {stimulus_id: value} (submitted trials only)."""
        out: dict[int, dict[str, float]] = {}
        with self.connect() as con:
            rows = con.execute(
                "SELECT r.trial, r.stimulus_id, r.value FROM responses r JOIN submissions s "
                "ON r.participant = s.participant AND r.trial = s.trial WHERE r.participant = ?",
                (participant,),
            ).fetchall()
        for trial, sid, value in rows:
            out.setdefault(int(trial), {})[sid] = float(value)
        return out


def read_responses(path: str | os.PathLike) -> list[dict]:
    """Every stored response as dicts (participant, trial, stimulus_id, position, value, updated_at)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no ratings database at {p} (run 'vitmusic listen' and collect ratings first)")
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT participant, trial, stimulus_id, position, value, updated_at FROM responses "
                           "ORDER BY participant, trial, position").fetchall()
    except sqlite3.Error as e:
        raise DataError(f"{p}: cannot read the ratings database ({e})") from e
    finally:
        con.close()
    return [dict(r) for r in rows]
