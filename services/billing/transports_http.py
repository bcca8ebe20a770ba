"""The HTTP clearinghouse transport: POSTs files and polls, fetches, acknowledges and
rejects inbound files (protocol in the ``transports`` module docstring); maps HTTP
statuses to transient or permanent transport errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx

from services.billing.transports_types import (
    _SAFE_NAME,
    FileConflictError,
    InboundFile,
    OutgoingFile,
    PermanentTransportError,
    SendReceipt,
    TransientTransportError,
    detect_kind,
)
from shared.logging import get_logger

__all__ = ["HttpTransport", "parse_auth_header"]

log = get_logger("billing.transport")


# ---------------------------------------------------------------- HTTP


def parse_auth_header(text: str) -> tuple[str, str]:
    """``"Authorization: Bearer abc"`` -> ``("Authorization", "Bearer abc")``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not value.strip():
        raise ValueError("auth header must look like 'Name: value'")
    return name.strip(), value.strip()


_TRANSIENT_STATUS = frozenset({408, 425, 429})


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: ignored, the backoff schedule applies


def _raise_for_status(response: httpx.Response, what: str) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    message = f"{what}: HTTP {code}"
    if code in _TRANSIENT_STATUS or code >= 500:
        raise TransientTransportError(message, status_code=code, retry_after=_retry_after(response))
    if code == 409:
        raise FileConflictError(message, status_code=code)
    raise PermanentTransportError(message, status_code=code)


class HttpTransport:
    """POSTs files to a clearinghouse and polls its inbound listing (protocol above)."""

    name = "http"

    def __init__(
        self,
        url: str,
        auth_header: tuple[str, str] | str,
        timeout: float = 30.0,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        name, value = (
            parse_auth_header(auth_header) if isinstance(auth_header, str) else auth_header
        )
        self._auth = {name: value}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        try:
            response = await self._client.request(
                method,
                url,
                content=content,
                json=json,
                headers={**self._auth, **(headers or {})},
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            raise TransientTransportError(f"{what}: {type(exc).__name__}") from exc
        _raise_for_status(response, what)
        return response

    async def send(self, batch: OutgoingFile) -> SendReceipt:
        response = await self._request(
            "POST",
            self.url,
            f"send {batch.name}",
            content=batch.content,
            headers={
                "Content-Type": "application/edi-x12",
                "X-Filename": batch.name,
                "X-Batch-Id": batch.batch_id,
                "X-Content-SHA256": batch.content_hash,
                "Idempotency-Key": batch.content_hash,
            },
        )
        remote = ""
        if response.headers.get("content-type", "").startswith("application/json"):
            with contextlib.suppress(ValueError):
                body = response.json()
                if isinstance(body, dict) and body.get("id") is not None:
                    remote = str(body["id"])
        remote = remote or response.headers.get("location", "")
        log.info(
            "billing.transport.sent",
            transport=self.name,
            file=batch.name,
            batch_id=batch.batch_id,
            status=response.status_code,
            remote_ref=remote,
        )
        return SendReceipt(
            file_name=batch.name,
            batch_id=batch.batch_id,
            content_hash=batch.content_hash,
            transport=self.name,
            remote_ref=remote,
            already_present=response.headers.get("x-duplicate", "").lower() in ("1", "true"),
            status_code=response.status_code,
        )

    def _file_url(self, ref: str, suffix: str = "") -> str:
        return f"{self.url}/inbound/{quote(ref, safe='')}{suffix}"

    async def fetch_inbound(self) -> list[InboundFile]:
        listing = await self._request("GET", f"{self.url}/inbound", "list inbound")
        try:
            body = listing.json()
        except ValueError as exc:
            raise PermanentTransportError("inbound listing is not JSON") from exc
        items = body.get("files", []) if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise PermanentTransportError("inbound listing has no 'files' list")
        out = []
        for item in items:
            if not isinstance(item, dict) or item.get("id") is None:
                raise PermanentTransportError("inbound listing entry without an id")
            ref = str(item["id"])
            name = str(item.get("name") or ref)
            if not _SAFE_NAME.match(name):
                name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")[:200] or "file"
            got = await self._request("GET", self._file_url(ref), f"fetch {name}")
            out.append(InboundFile(name, got.content, detect_kind(got.content), ref))
        return out

    async def mark_processed(self, f: InboundFile) -> None:
        try:
            await self._request("DELETE", self._file_url(f.ref), f"acknowledge {f.name}")
        except PermanentTransportError as exc:
            if exc.status_code != 404:  # 404: already acknowledged
                raise

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None:
        await self._request(
            "POST",
            self._file_url(f.ref, "/reject"),
            f"reject {f.name}",
            json={"reasons": list(reasons)},
        )
