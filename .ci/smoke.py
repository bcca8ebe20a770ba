"""Smoke test of the embedded default: start `mtm-billing dev` with no service URLs, wait for
/ready, post one session with the printed intake key, see the worker process it, stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.embedded import free_port
from tests.fixtures.sessions import session_payload

ROOT = Path(__file__).resolve().parent.parent


def http(method: str, url: str, key: str | None = None, body: object = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - localhost only
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def main() -> int:
    port = free_port()
    var = ROOT / "var" / "ci-smoke"
    shutil.rmtree(var, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTM_")}
    env.update(MTM_PORT=str(port), MTM_VAR_DIR=str(var), MTM_LOG_LEVEL="WARNING")
    (ROOT / "var").mkdir(exist_ok=True)
    log = (ROOT / "var" / "ci-smoke.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "dev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        intake_key = None
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline and intake_key is None:
            line = proc.stdout.readline()
            if not line:
                if proc.poll() is not None:
                    raise SystemExit(f"dev exited early with {proc.returncode}")
                continue
            m = re.search(r"intake key:\s+(\S+)", line)
            if m:
                intake_key = m.group(1)
        assert intake_key, "dev never printed an intake key"
        while time.monotonic() < deadline:
            try:
                status, body = http("GET", f"{base}/ready")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("dev never became ready")
        print("ready:", body)
        status, created = http(
            "POST", f"{base}/v1/sessions", intake_key, session_payload("SMOKE-1")
        )
        assert status == 201, (status, created)
        sid = created["id"]
        for _ in range(60):
            status, read = http("GET", f"{base}/v1/sessions/{sid}", intake_key)
            if read.get("state") != "received":
                break
            time.sleep(0.5)
        print("session state:", read.get("state"))
        assert read["state"] != "received", "the worker never processed the session"
        print("smoke test passed")
        return 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
