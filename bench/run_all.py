"""Run every benchmark in turn (`make bench`). Each one prints its own numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "bench_coding.py",
    "bench_eligibility_pure.py",
    "bench_x12_837p.py",
    "bench_x12_835.py",
    "bench_intake.py",
    "bench_coverage.py",
    "bench_claims.py",
    "bench_submission.py",
    "bench_remittance.py",
    "bench_pmpm.py",
    "bench_demo.py",
]


def main() -> int:
    failed = 0
    for name in ORDER:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n=== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(path)], cwd=HERE.parent)  # noqa: S603
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
