"""`zoning check --report` against `zoning check`: the reports must not break flat memory (issue 15).

Usage: python benchmarks/bench_report.py [--n 200000] [--repeat 3]
Each run is a separate `zoning check` process on the benchmark's synthetic parcels; peak memory is the child's
VmHWM. Prints both side by side with the ratio.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402


def main() -> None:
    _data.compare_main(("zoning check", []), ("zoning check --report", ["--report", "{tmp}/rep"]),
                       "with report / without")


if __name__ == "__main__":
    main()
