"""What the parcel ledger (layer ``parcels``, issue 13) costs: `zoning check` with and without `--no-ledger`.

Usage: python benchmarks/bench_ledger.py [--n 1000000] [--repeat 1]
Each run is a separate `zoning check` process on the benchmark's synthetic parcels (``_data.parcels``) against its
synthetic control lines; peak memory is the child's. Prints both side by side with the ratio (target ≤ 1.2).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402


def main() -> None:
    _data.compare_main(("zoning check --no-ledger", ["--no-ledger"]), ("zoning check (parcels layer)", []),
                       "with the ledger / without (target ≤ 1.20)")


if __name__ == "__main__":
    main()
