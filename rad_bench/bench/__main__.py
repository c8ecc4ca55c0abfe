"""``python -m rad_bench.bench [--quick] [--out DIR] [--device auto|cpu|cuda]``: the same as
``rad-bench bench`` (the flags are defined once, by the CLI)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``rad-bench bench`` with ``argv`` (default: this process's arguments); its exit status."""
    from rad_bench.cli import app

    args = sys.argv[1:] if argv is None else argv
    try:
        app(["bench", *args], prog_name="python -m rad_bench.bench")  # exits, with the command's status
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
