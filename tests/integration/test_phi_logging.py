"""Patient names, birth dates and member ids never reach log output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from services.billing.tasks import price_session
from shared.logging import configure_logging, get_logger
from tests.fixtures.sessions import session_payload
from tests.integration.conftest import Keys

FIRST, LAST = "Zebulon", "Quackenbush"
BIRTH = "1937-04-19"
MEMBER = "MBR998877665"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    yield stream
    configure_logging("WARNING", json=True)


def _assert_no_phi(text: str) -> None:
    for secret in (FIRST, LAST, BIRTH, "19370419", MEMBER):
        assert secret not in text, f"{secret!r} leaked into logs"


def test_redaction_processor_drops_phi_at_any_depth(log_output: io.StringIO) -> None:
    log = get_logger("test")
    log.info(
        "claim.debug",
        first_name=FIRST,
        member_id=MEMBER,
        patient={"last_name": LAST, "birth_date": BIRTH},
    )
    log.info("nested", data={"subscriber": {"name": f"{FIRST} {LAST}"}, "items": [{"dob": BIRTH}]})
    log.info("x12", segment=f"NM1*IL*1*{LAST}*{FIRST}****MI*{MEMBER}~DMG*D8*19370419*M~")
    logging.getLogger("thirdparty").info("payload %s", {"member_id": MEMBER})
    logging.getLogger("thirdparty").warning("raw", extra={"last_name": LAST})
    out = log_output.getvalue()
    _assert_no_phi(out)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["event"] == "claim.debug"
    assert lines[0]["first_name"] == "[redacted]"


async def test_requests_errors_and_jobs_log_no_phi(
    log_output: io.StringIO, client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    body = session_payload("S-PHI")
    body["pharmacist"]["first_name"] = FIRST
    body["pharmacist"]["last_name"] = LAST
    body["patient_ref"] = MEMBER
    ok = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert ok.status_code == 201
    bad = dict(body, date_of_service=BIRTH, documented_minutes="forty")
    resp = await client.post("/v1/sessions", json=bad, headers=keys.headers("intake"))
    assert resp.status_code == 422
    conflict = dict(body, documented_minutes=55)
    assert (
        await client.post("/v1/sessions", json=conflict, headers=keys.headers("intake"))
    ).status_code == 409
    await price_session(worker_ctx, ok.json()["id"], "unused")
    await client.get(f"/v1/sessions/{ok.json()['id']}", headers=keys.headers("biller"))
    structlog.get_logger("test").info("done")
    out = log_output.getvalue()
    assert "billing.sessions.processed" in out
    _assert_no_phi(out)
    for line in out.splitlines():
        json.loads(line)  # every line is JSON
