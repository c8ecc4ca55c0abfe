"""Screenshots of a run's report.html as a reader opens it: full page at 1280 and 800 px wide, in headless
Chromium (Debian's ``chromium`` package: ``apt-get install chromium``), trimmed of the blank space below the
page, into docs/figures/report_<name>_<width>px.png. The report page issue asks for them to be regenerated
by a command, not by hand.

Usage: python experiments/report_page/screens.py RUN_FOLDER NAME [--out docs/figures] [--height PX]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

WIDTHS = (1280, 800)
MAX_HEIGHT = 16_000  # px: taller pages are cut (Chromium's screenshot is one window)


def shoot(page: Path, width: int, out: Path, height: int | None = None) -> None:
    """One full-page screenshot of ``page`` at ``width`` px, trimmed below the last non-white row (and to the
    top ``height`` px when given: the header, the leaderboard and its notes, for docs)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("screens.py: no chromium on PATH; install Debian's package: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.png"
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={width},{MAX_HEIGHT}", f"--screenshot={raw}", page.resolve().as_uri()]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        im = Image.open(raw).convert("RGB")
        rows = np.flatnonzero((np.asarray(im) < 250).any(axis=(1, 2)))
        bottom = min(int(rows[-1]) + 24 if len(rows) else im.height, height or im.height)
        im.crop((0, 0, width, min(bottom, im.height))).save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a run folder holding report.html")
    ap.add_argument("name", help="the screenshots' name: report_<name>_<width>px.png")
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    ap.add_argument("--height", type=int, default=None, help="keep the top HEIGHT px (default: the whole page)")
    args = ap.parse_args()
    page = args.run / "report.html"
    if not page.is_file():
        raise SystemExit(f"{page}: not found; build it with `rad-bench report {args.run}`")
    for w in WIDTHS:
        out = args.out / f"report_{args.name}_{w}px.png"
        shoot(page, w, out, args.height)
        print(out)


if __name__ == "__main__":
    main()
