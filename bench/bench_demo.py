"""The full demo pipeline at ten times the demo's size (5,000 sessions, 2,000 patients):
wall time per stage and in total, and the slowest stage.

    uv run python bench/bench_demo.py [--sessions 5000 --patients 2000]

Runs `mtm-billing demo --once` in a subprocess (embedded PostgreSQL/Redis unless MTM_* URLs
are set) and reads the report it writes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import machine  # noqa: E402
from shared.embedded import free_port  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--patients", type=int, default=2000)
    args = ap.parse_args()
    report_path = Path(tempfile.mkdtemp(prefix="mtm-bench-demo-")) / "report.json"
    env = {**os.environ, "MTM_PORT": str(free_port())}
    start = time.perf_counter()
    subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "services.cli",
            "demo",
            "--once",
            "--sessions",
            str(args.sessions),
            "--patients",
            str(args.patients),
            "--report",
            str(report_path),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    report = json.loads(report_path.read_text())
    stages = report["timings"]
    slowest = max(stages, key=stages.get)
    print(
        json.dumps(
            {
                "machine": machine(),
                "sessions": report["sessions"],
                "claims": report["claims"],
                "claim_status": report["claim_status"],
                "stages_s": stages,
                "pipeline_s": round(sum(stages.values()), 2),
                "wall_s_including_startup": round(wall, 2),
                "slowest_stage": slowest,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
