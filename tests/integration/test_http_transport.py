"""HttpTransport against a real HTTP server on 127.0.0.1 (a stub clearinghouse implementing
the protocol in the transports module docstring), including retries through real sockets."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.payer_simulator import PayerSimulator, SimulatorRules
from services.billing.transports import (
    FileConflictError,
    HttpTransport,
    InboundKind,
    OutgoingFile,
    PermanentTransportError,
    RetryPolicy,
    TransientTransportError,
    send_with_retry,
)
from tests.unit.x12.test_837p import build, claim

TOKEN = "Bearer s3cret-token"


@dataclass
class Clearinghouse:
    """State of the stub server; tests script failures through ``fail_next``."""

    received: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # key -> (name, body)
    names: dict[str, str] = field(default_factory=dict)  # file name -> idempotency key
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    delay_next: list[float] = field(default_factory=list)
    inbound: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (name, body)
    rejected: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Clearinghouse) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def _reply(
            self, code: int, body: object = None, headers: dict[str, str] | None = None
        ) -> None:
            data = (
                b""
                if body is None
                else (body if isinstance(body, bytes) else json.dumps(body).encode())
            )
            self.send_response(code)
            if body is not None and not isinstance(body, bytes):
                self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _gate(self) -> bool:
            with state.lock:
                state.requests.append((self.command, self.path, dict(self.headers)))
                delay = state.delay_next.pop(0) if state.delay_next else 0.0
                fail = state.fail_next.pop(0) if state.fail_next else None
            if delay:
                time.sleep(delay)
            if self.headers.get("Authorization") != TOKEN:
                self._reply(401, {"error": "unauthorized"})
                return False
            if fail is not None:
                self._reply(fail, {"error": "scripted"}, {"Retry-After": "0"})
                return False
            return True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not self._gate():
                return
            if self.path.startswith("/edi/inbound/") and self.path.endswith("/reject"):
                ref = self.path.split("/")[3]
                with state.lock:
                    if state.inbound.pop(ref, None) is None:
                        return self._reply(404)
                    state.rejected[ref] = json.loads(body)["reasons"]
                return self._reply(204)
            if self.path != "/edi":
                return self._reply(404)
            if self.headers.get("Content-Type") != "application/edi-x12":
                return self._reply(415, {"error": "content type"})
            name, key = self.headers["X-Filename"], self.headers["Idempotency-Key"]
            with state.lock:
                if key in state.received:
                    return self._reply(200, {"id": f"rcv-{key[:8]}"}, {"X-Duplicate": "true"})
                if name in state.names:
                    return self._reply(409, {"error": "name taken"})
                state.received[key] = (name, body)
                state.names[name] = key
            self._reply(201, {"id": f"rcv-{key[:8]}"})

        def do_GET(self) -> None:
            if not self._gate():
                return
            with state.lock:
                if self.path == "/edi/inbound":
                    files = [{"id": k, "name": n} for k, (n, _) in sorted(state.inbound.items())]
                    return self._reply(200, {"files": files})
                ref = self.path.removeprefix("/edi/inbound/")
                if ref in state.inbound:
                    return self._reply(200, state.inbound[ref][1])
            self._reply(404)

        def do_DELETE(self) -> None:
            if not self._gate():
                return
            ref = self.path.removeprefix("/edi/inbound/")
            with state.lock:
                found = state.inbound.pop(ref, None)
            self._reply(204 if found else 404)

    return Handler


@pytest.fixture
def clearinghouse() -> Iterator[tuple[str, Clearinghouse]]:
    state = Clearinghouse()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/edi", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _file(pcn: str = "PCN1", name: str = "BATCH0001.x12") -> OutgoingFile:
    return OutgoingFile(name, build([claim(pcn)]).encode(), "batch-1")


class _NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_send_posts_the_file_with_headers_and_auth(
    clearinghouse: tuple[str, Clearinghouse],
) -> None:
    url, state = clearinghouse
    f = _file()
    async with HttpTransport(url, f"Authorization: {TOKEN}", timeout=5) as t:
        receipt = await t.send(f)
        again = await t.send(f)
    assert (receipt.remote_ref, receipt.status_code, receipt.already_present) == (
        f"rcv-{f.content_hash[:8]}",
        201,
        False,
    )
    assert (again.remote_ref, again.already_present) == (receipt.remote_ref, True)
    assert state.received == {f.content_hash: ("BATCH0001.x12", f.content)}
    method, path, headers = state.requests[0]
    assert (method, path) == ("POST", "/edi")
    assert headers["Content-Type"] == "application/edi-x12"
    assert headers["X-Filename"] == "BATCH0001.x12"
    assert headers["X-Batch-Id"] == "batch-1"
    assert headers["X-Content-SHA256"] == f.content_hash


async def test_transient_failures_then_success(clearinghouse: tuple[str, Clearinghouse]) -> None:
    url, state = clearinghouse
    state.fail_next = [503, 429, 502]
    sleep = _NoSleep()
    async with HttpTransport(url, ("Authorization", TOKEN), timeout=5) as t:
        outcome = await send_with_retry(
            t, _file(), RetryPolicy(5, 0.5, 8.0), sleep, rng=random.Random(3)
        )
    assert outcome.ok
    assert [a.status_code for a in outcome.attempts] == [503, 429, 502, 201]
    assert len(sleep.delays) == 3
    assert len(state.received) == 1


async def test_timeouts_and_refused_connections_are_transient(
    clearinghouse: tuple[str, Clearinghouse],
) -> None:
    url, state = clearinghouse
    state.delay_next = [1.0]
    async with HttpTransport(url, ("Authorization", TOKEN), timeout=0.2) as t:
        with pytest.raises(TransientTransportError, match="Timeout"):
            await t.send(_file())
        # The server kept the timed-out upload; the retry is recognised as the same file.
        receipt = await t.send(_file())
    assert receipt.already_present or receipt.status_code == 201
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    sleep = _NoSleep()
    async with HttpTransport(
        f"http://127.0.0.1:{closed_port}/edi", ("Authorization", TOKEN), timeout=1
    ) as t:
        outcome = await send_with_retry(t, _file(), RetryPolicy(3, 0.1, 1.0), sleep)
    assert outcome.status == "gave_up"
    assert len(outcome.attempts) == 3
    assert all(a.transient and "ConnectError" in (a.error or "") for a in outcome.attempts)


async def test_permanent_failures_are_not_retried(clearinghouse: tuple[str, Clearinghouse]) -> None:
    url, state = clearinghouse
    sleep = _NoSleep()
    async with HttpTransport(url, ("Authorization", "Bearer wrong"), timeout=5) as t:
        outcome = await send_with_retry(t, _file(), RetryPolicy(5, 0.1, 1.0), sleep)
    assert (outcome.status, len(outcome.attempts), sleep.delays) == ("failed", 1, [])
    assert outcome.attempts[0].status_code == 401
    assert state.received == {}
    state.fail_next = [400]
    async with HttpTransport(url, ("Authorization", TOKEN), timeout=5) as t:
        with pytest.raises(PermanentTransportError) as info:
            await t.send(_file())
        assert info.value.status_code == 400
        await t.send(_file())
        with pytest.raises(FileConflictError):  # same name, other content
            await t.send(_file("OTHER"))


async def test_inbound_listing_fetch_acknowledge_and_reject(
    clearinghouse: tuple[str, Clearinghouse],
) -> None:
    url, state = clearinghouse
    sim = PayerSimulator(
        SimulatorRules(reject_999_rate=0, reject_277_rate=0, reversal_rate=0),
        now=lambda: datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
    )
    answers = sim.adjudicate_file("b.x12", build([claim("PCN1")]))
    for n, f in enumerate(answers, start=1):
        state.inbound[f"f{n}"] = (f.name, f.text.encode())
    state.inbound["f9"] = ("../../etc/passwd", b"garbage")
    async with HttpTransport(url, ("Authorization", TOKEN), timeout=5) as t:
        files = await t.fetch_inbound()
        assert [(f.ref, f.kind) for f in files] == [
            ("f1", InboundKind.ACK_999),
            ("f2", InboundKind.ACK_277CA),
            ("f3", InboundKind.ERA_835),
            ("f9", InboundKind.UNKNOWN),
        ]
        assert files[0].content == answers[0].text.encode()
        assert files[3].name == "etc_passwd"  # never a path
        for inbound in files[:3]:
            await t.mark_processed(inbound)
        await t.mark_processed(files[0])  # already acknowledged: fine
        await t.quarantine(files[3], ["not X12"])
        assert await t.fetch_inbound() == []
    assert state.rejected == {"f9": ["not X12"]}
    assert all(h.get("Authorization") == TOKEN for _, _, h in state.requests)
