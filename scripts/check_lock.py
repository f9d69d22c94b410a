"""Check that a virtualenv holds exactly the locked versions: every installed distribution that the lock (or
the --no-deps file) names must be at its pinned version; anything else installed, beside what is installed on
purpose (torch, first; vitmusic itself; pip's own tools), is listed as a note.

    python scripts/check_lock.py scripts/requirements.lock [scripts/requirements-nodeps.txt ...]

Run by scripts/setup.sh with the venv's python; exits 1 listing every difference.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

ALLOWED_UNLOCKED = {"torch", "vitmusic", "pip", "wheel"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def main(argv: list[str]) -> int:
    lock = read_pins(Path(argv[0]))
    extra = {}
    for path in argv[1:]:  # the --no-deps pins (scripts/requirements-nodeps.txt, the optional referees' files)
        if Path(path).is_file():
            extra.update(read_pins(Path(path)))
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    problems, unlocked = [], []
    for name, version in sorted(installed.items()):
        want = lock.get(name, extra.get(name))
        if want is None:
            if name not in ALLOWED_UNLOCKED:
                unlocked.append(f"{name}=={version}")
        elif version != want:
            problems.append(f"{name}=={version} is installed, the lock says {want}")
    for line in problems:
        print(f"[setup] lock mismatch: {line}", file=sys.stderr)
    if unlocked:  # installed by hand into a long-lived venv: not part of the tested set, but not wrong
        print(f"[setup] note: installed but not locked: {', '.join(unlocked)}", file=sys.stderr)
    if not problems:
        print(f"[setup] environment matches the lock ({sum(n in installed for n in lock)} locked packages installed)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
