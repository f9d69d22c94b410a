"""What the listening-test API does, without HTTP: sessions, submissions, which media file a URL names.

The web layer (:mod:`vitmusic.listening.app`) turns :class:`RequestError` into JSON error answers; everything
here is plain Python over a stimuli folder made by ``vitmusic stimuli``.

Participants log in with the unguessable token ``vitmusic stimuli`` wrote for them
(``OUT/private/participants.csv``); their ids (``P01``...) are not accepted, so nobody can open another
participant's session by counting. (A folder made before the tokens existed falls back to the ids.)
"""

from __future__ import annotations

import csv
import json
import math
import os
from http import HTTPStatus
from importlib import resources
from pathlib import Path

from vitmusic.errors import DataError
from vitmusic.listening.design import REFERENCE_POSITION
from vitmusic.listening.stimuli import MEDIA, PUBLIC
from vitmusic.listening.store import DB_NAME, RatingStore, file_sha256

MEDIA_TYPES = {".mp4": "video/mp4"}
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}
MAX_JSON_DEPTH = 8  # a submission is 3 levels deep
MAX_NAME_CHARS = 255  # longer media names are answered 404 before the file system sees them
TOKENS_FILE = "participants.csv"  # in OUT/private: participant, token, path


class RequestError(Exception):
    """An HTTP error answer: status and a one-line message (sent as JSON, never echoing the request)."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class ListeningTest:
    """A stimuli folder being served: its public manifest, media folder and ratings database.

    Args:
        root: the ``OUT`` folder of ``vitmusic stimuli``.

    Raises:
        DataError: not a stimuli folder, or a malformed manifest / test.json.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        public = self.root / PUBLIC
        manifest = public / "manifest.csv"
        if not manifest.is_file() or not (public / "test.json").is_file():
            raise DataError(f"{self.root} is not a stimuli folder (no {PUBLIC}/manifest.csv or {PUBLIC}/test.json;"
                            " make one with 'vitmusic stimuli')")
        self.media_dir = (public / MEDIA).resolve()
        try:
            self.info = json.loads((public / "test.json").read_text(encoding="utf-8"))
            self.design = str(self.info["design"])
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{public / 'test.json'}: malformed ({e})") from e
        # participant -> trial -> [(position, stimulus_id, file)]
        self.trials: dict[str, dict[int, list[tuple[str, str, str]]]] = {}
        with manifest.open(newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    trial = int(row["trial"])
                    entry = (row["position"], row["stimulus_id"], row["file"])
                    self.trials.setdefault(row["participant"], {}).setdefault(trial, []).append(entry)
                except (KeyError, TypeError, ValueError) as e:
                    raise DataError(f"{manifest}:{line}: malformed manifest row ({e})") from e
        # the media a session can name: /media/<name> is served only for these (plus the folder checks)
        self.media_names = {file[len(MEDIA) + 1:] for trials in self.trials.values() for entries in trials.values()
                            for _, _, file in entries if file.startswith(f"{MEDIA}/")}
        self._by_folded = {p.casefold(): p for p in self.trials}
        self.token_of = read_tokens(self.root / "private" / TOKENS_FILE, set(self.trials))
        self._by_token = {t: p for p, t in self.token_of.items()}
        self.store = RatingStore(self.root / DB_NAME, file_sha256(manifest))

    # ------------------------------------------------------------------------------------------ API
    def participant(self, raw: object) -> str:
        """The participant id a login value names: their token (ids only in folders without tokens)."""
        key = raw.strip() if isinstance(raw, str) else ""
        pid = self._by_token.get(key) if self.token_of else self._by_folded.get(key.casefold())
        if pid is None:
            raise RequestError(HTTPStatus.NOT_FOUND, "unknown participant id")
        return pid

    def session(self, raw_participant: object) -> dict:
        """The participant's trials (in their order), stored answers and first unanswered trial (None: done)."""
        pid = self.participant(raw_participant)
        answers = self.store.answers(pid)
        trials = []
        for number in sorted(self.trials[pid]):
            entries = self.trials[pid][number]
            ref = [f"/{file}" for pos, _, file in entries if pos == REFERENCE_POSITION]
            trials.append({
                "trial": number,
                "reference": ref[0] if ref else None,
                "stimuli": [{"position": pos, "stimulus_id": sid, "url": f"/{file}"}
                            for pos, sid, file in entries if pos != REFERENCE_POSITION],
            })
        pending = [t["trial"] for t in trials if t["trial"] not in answers]
        return {"participant": self.token_of.get(pid, pid), "design": self.design, "scale": self.info.get("scale"),
                "trials": trials, "answers": {str(k): v for k, v in answers.items()},
                "next_trial": pending[0] if pending else None}

    def submit(self, payload: object) -> dict:
        """Validate and store one trial's answers; returns ``{"ok": True, "next_trial": n | None}``."""
        if not isinstance(payload, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "expected a JSON object")
        pid = self.participant(payload.get("participant"))
        trial = payload.get("trial")
        if isinstance(trial, bool) or not isinstance(trial, int):
            raise RequestError(HTTPStatus.BAD_REQUEST, "trial must be an integer")
        if trial not in self.trials[pid]:
            raise RequestError(HTTPStatus.BAD_REQUEST, "no such trial for this participant")
        rated = {sid: pos for pos, sid, _ in self.trials[pid][trial] if pos != REFERENCE_POSITION}
        values = payload.get("values")
        if not isinstance(values, dict) or set(values) != set(rated):
            raise RequestError(HTTPStatus.BAD_REQUEST, "values must give one answer per stimulus of the trial")
        clean: dict[str, tuple[str, float]] = {}
        for sid, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"answer for {sid} is not a number")
            clean[sid] = (rated[sid], float(v))
        if self.design == "ab":
            if sorted(v for _, v in clean.values()) != [0.0, 1.0]:
                raise RequestError(HTTPStatus.BAD_REQUEST, "an A/B answer chooses exactly one stimulus (1 and 0)")
        elif any(not 0.0 <= v <= 100.0 for _, v in clean.values()):
            raise RequestError(HTTPStatus.BAD_REQUEST, "ratings must lie in 0..100")
        self.store.submit(pid, trial, clean)
        done = self.store.answers(pid)
        pending = [t for t in sorted(self.trials[pid]) if t not in done]
        return {"ok": True, "next_trial": pending[0] if pending else None}

    # ---------------------------------------------------------------------------------------- files
    def media_file(self, rel: str) -> Path:
        """The media file ``/media/<rel>`` names (``rel`` percent-decoded), or RequestError: 403 for a path
        that tries to leave the folder (``..``, absolute, backslash, NUL, a symlink out), 404 for anything the
        manifest does not list or that is missing."""
        parts = rel.split("/")
        if (not rel or "\x00" in rel or "\\" in rel or rel.startswith("/")
                or any(p in ("", ".", "..") for p in parts)):
            raise RequestError(HTTPStatus.FORBIDDEN, "forbidden path")
        if len(rel) > MAX_NAME_CHARS or rel not in self.media_names:
            raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        try:
            path = (self.media_dir / rel).resolve()
            inside = path.is_relative_to(self.media_dir)  # symlinks pointing out of the folder land here
            exists = path.is_file()
        except OSError as e:  # a name the file system refuses (too long, invalid): nothing to serve
            raise RequestError(HTTPStatus.NOT_FOUND, "not found") from e
        if not inside:
            raise RequestError(HTTPStatus.FORBIDDEN, "forbidden path")
        if not exists or path.suffix.lower() not in MEDIA_TYPES:
            raise RequestError(HTTPStatus.NOT_FOUND, "not found")
        return path


def read_tokens(path: Path, participants: set[str]) -> dict[str, str]:
    """``{participant id: login token}`` from ``OUT/private/participants.csv`` (empty when there is none).

    Raises:
        DataError: a malformed file, or one that does not cover the manifest's participants.
    """
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            tokens = {row["participant"]: row["token"] for row in csv.DictReader(f)}
    except (KeyError, TypeError, ValueError, csv.Error) as e:
        raise DataError(f"{path}: malformed participant tokens ({e})") from e
    if set(tokens) != participants or len(set(tokens.values())) != len(tokens) or not all(tokens.values()):
        raise DataError(f"{path}: the tokens do not match the manifest's participants (one distinct token each)")
    return tokens


def _json_depth_ok(body: bytes, limit: int) -> bool:
    """Whether brackets nest at most ``limit`` deep (strings skipped), checked before ``json.loads``
    recurses into them: a 100k-deep body would otherwise raise RecursionError inside the handler."""
    depth, in_str, escape = 0, False, False
    for b in body:
        if in_str:
            if escape:
                escape = False
            elif b == 0x5C:  # backslash
                escape = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return False
        elif b in (0x5D, 0x7D):
            depth -= 1
    return True


def _number(text: str) -> float | int:
    """JSON integers of any length: small ones stay ints (trial numbers), long ones become floats (a
    400-digit rating turns into inf and is refused as not finite, instead of overflowing later)."""
    return int(text) if len(text) <= 18 else float(text)


def parse_body(body: bytes) -> object:
    """A request body as JSON, or RequestError 400 (not JSON, too deep, NaN/Infinity literals)."""
    if not _json_depth_ok(body, MAX_JSON_DEPTH):
        raise RequestError(HTTPStatus.BAD_REQUEST, "body nests too deeply")

    def constant(name: str):
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(body or b"null", parse_int=_number, parse_constant=constant)
    except (ValueError, RecursionError) as e:
        raise RequestError(HTTPStatus.BAD_REQUEST, "body is not JSON") from e


def static_files() -> dict[str, bytes]:
    """The app's own files (name -> bytes), read once from the package."""
    root = resources.files("vitmusic.listening") / "static"
    return {p.name: p.read_bytes() for p in root.iterdir()
            if p.is_file() and Path(p.name).suffix in STATIC_TYPES}
