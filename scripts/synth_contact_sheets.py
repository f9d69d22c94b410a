"""Contact sheets of the synthetic benchmark's levels for the docs: one PNG per level, rows = nuisance settings
(none; layout + background; all), columns = pieces, performer boxes in red.

    python scripts/synth_contact_sheets.py --out docs/img
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder for synth_<level>.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from vitmusic.data.synth.nuisance import LEVELS
    from vitmusic.data.synth.plots import contact_sheet

    for level in LEVELS:
        path = contact_sheet(level, Path(args.out) / f"synth_{level}.png", seed=args.seed)
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
