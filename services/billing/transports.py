"""Clearinghouse transports: the port billing sends 837P files through and reads
acknowledgments and remittances from, with a mailbox directory adapter (the default) and
an HTTP adapter, plus the retry policy for transient failures.

Directory mailbox (``DirectoryTransport(root)``)::

    root/outbox/      837P files we send (written to a dot-prefixed temp name, then linked
                      into place, so a reader never sees half a file; readers skip dotfiles)
    root/inbox/       999 / 277CA / 835 files the far side leaves for us
    root/archive/YYYY-MM-DD/   inbound files after they were processed
    root/quarantine/  inbound files we could not use, each with ``<name>.reason.txt``

HTTP clearinghouse protocol (``HttpTransport(url, auth_header, timeout)``), kept tiny on
purpose; ``tests/integration/test_http_transport.py`` runs a stub server implementing it:

* ``POST {url}`` with the file as the body: ``Content-Type: application/edi-x12``,
  ``X-Filename``, ``X-Batch-Id``, ``X-Content-SHA256`` and ``Idempotency-Key`` (the content
  hash) plus the configured auth header. 2xx confirms receipt; a JSON body ``{"id": ...}``
  (or a ``Location`` header) names the server's copy. A server that already holds the same
  idempotency key answers 2xx with the same id and ``X-Duplicate: true``, which makes
  retrying after a lost response safe. 409 (same file name, other content) and other 4xx are permanent; 408, 425, 429 and
  5xx are transient (``Retry-After`` in seconds is honoured as a lower bound).
* ``GET {url}/inbound`` lists waiting files: ``{"files": [{"id": ..., "name": ...}]}``.
* ``GET {url}/inbound/{id}`` returns one file's bytes.
* ``DELETE {url}/inbound/{id}`` acknowledges a processed file (it is no longer listed).
* ``POST {url}/inbound/{id}/reject`` with ``{"reasons": [...]}`` quarantines a file.

Reasons and log lines carry file names, ids and counts only, never PHI.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, Self
from urllib.parse import quote

import httpx

from shared.clock import utc_now
from shared.logging import get_logger
from shared.x12.tokenizer import X12SyntaxError, tokenize

__all__ = [
    "Attempt",
    "DirectoryTransport",
    "FileConflictError",
    "HttpTransport",
    "InboundFile",
    "InboundKind",
    "OutgoingFile",
    "PermanentTransportError",
    "RetryPolicy",
    "SendOutcome",
    "SendReceipt",
    "TransientTransportError",
    "Transport",
    "TransportError",
    "content_hash",
    "detect_kind",
    "parse_auth_header",
    "send_with_retry",
]

log = get_logger("billing.transport")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_GUIDE_277CA = "005010X214"


# ---------------------------------------------------------------- errors


class TransportError(Exception):
    """A file could not be moved across the transport."""


class TransientTransportError(TransportError):
    """Worth retrying: timeouts, refused connections, 408/429/5xx."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


class PermanentTransportError(TransportError):
    """Retrying cannot help (bad credentials, rejected request, conflicting content)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class FileConflictError(PermanentTransportError):
    """The far side already holds a file with this name and different content."""


# ---------------------------------------------------------------- value types


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _check_name(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(
            f"file name {name!r} must be 1-200 chars of letters, digits, '.', '_' or '-' "
            "and start with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """One batch file to send. ``content_hash`` (sha256 hex) is computed when omitted and
    verified when given, so a hash recorded before sending always matches the bytes sent."""

    name: str
    content: bytes
    batch_id: str
    content_hash: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        actual = content_hash(self.content)
        if not self.content_hash:
            object.__setattr__(self, "content_hash", actual)
        elif self.content_hash != actual:
            raise ValueError(f"{self.name}: content_hash does not match the content")


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What the far side acknowledged: ``remote_ref`` is the stored path (directory) or the
    server's id for the file (HTTP, empty when the server returned none)."""

    file_name: str
    batch_id: str
    content_hash: str
    transport: str
    remote_ref: str
    already_present: bool = False  # an identical earlier send was found; nothing new written
    status_code: int | None = None


class InboundKind(StrEnum):
    ACK_999 = "999"
    ACK_277CA = "277CA"
    ERA_835 = "835"
    UNKNOWN = "unknown"


def detect_kind(content: bytes) -> InboundKind:
    """From the first ST01 (a 277 is a 277CA only under GS08 005010X214)."""
    try:
        _, segments = tokenize(content)
    except X12SyntaxError:
        return InboundKind.UNKNOWN
    version = ""
    for seg in segments:
        if seg[0] == "GS":
            version = seg[8] if len(seg) > 8 else ""
        elif seg[0] == "ST":
            set_id = seg[1] if len(seg) > 1 else ""
            st03 = seg[3] if len(seg) > 3 else ""
            if set_id == "999":
                return InboundKind.ACK_999
            if set_id == "835":
                return InboundKind.ERA_835
            if set_id == "277" and (version or st03).startswith(_GUIDE_277CA):
                return InboundKind.ACK_277CA
            return InboundKind.UNKNOWN
    return InboundKind.UNKNOWN


@dataclass(frozen=True, slots=True)
class InboundFile:
    """A file waiting in the inbox; ``ref`` is the transport's handle (name or server id)."""

    name: str
    content: bytes
    kind: InboundKind
    ref: str

    @property
    def content_hash(self) -> str:
        return content_hash(self.content)


class Transport(Protocol):
    name: str

    async def send(self, batch: OutgoingFile) -> SendReceipt: ...

    async def fetch_inbound(self) -> list[InboundFile]: ...

    async def mark_processed(self, f: InboundFile) -> None: ...

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None: ...


# ---------------------------------------------------------------- directory mailbox


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/filesystem can fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(directory: Path, name: str, data: bytes, *, overwrite: bool) -> bool:
    """Write ``directory/name`` via a dot-prefixed temp file. Without ``overwrite`` an
    existing target is left alone and False is returned (hard links never clobber)."""
    tmp = directory / f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    target = directory / name
    try:
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if target.exists():  # no hard links here: a narrower race window, still checked
                    return False
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(directory)
    return True


def _free_name(directory: Path, name: str) -> Path:
    """``name``, or ``name.1``, ``name.2``... when a file of that name is already there."""
    target = directory / name
    n = 0
    while target.exists():
        n += 1
        target = directory / f"{name}.{n}"
    return target


class DirectoryTransport:
    """A mailbox on a (possibly shared) file system; see the module docstring for layout."""

    name = "directory"

    def __init__(self, root: Path, *, now: Callable[[], datetime] = utc_now) -> None:
        self.root = Path(root)
        self.outbox = self.root / "outbox"
        self.inbox = self.root / "inbox"
        self.archive = self.root / "archive"
        self.quarantine_dir = self.root / "quarantine"
        self._now = now

    def ensure_dirs(self) -> None:
        for d in (self.outbox, self.inbox, self.archive, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)

    async def send(self, batch: OutgoingFile) -> SendReceipt:
        return await asyncio.to_thread(self._send, batch)

    def _send(self, batch: OutgoingFile) -> SendReceipt:
        self.outbox.mkdir(parents=True, exist_ok=True)
        target = self.outbox / batch.name
        written = _write_atomic(self.outbox, batch.name, batch.content, overwrite=False)
        if not written:
            existing = content_hash(target.read_bytes())
            if existing != batch.content_hash:
                raise FileConflictError(
                    f"outbox already holds {batch.name} with different content "
                    f"(sha256 {existing[:12]}..., sending {batch.content_hash[:12]}...)"
                )
        log.info(
            "billing.transport.sent",
            transport=self.name,
            file=batch.name,
            batch_id=batch.batch_id,
            bytes=len(batch.content),
            already_present=not written,
        )
        return SendReceipt(
            file_name=batch.name,
            batch_id=batch.batch_id,
            content_hash=batch.content_hash,
            transport=self.name,
            remote_ref=str(target.relative_to(self.root)),
            already_present=not written,
        )

    async def fetch_inbound(self) -> list[InboundFile]:
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> list[InboundFile]:
        if not self.inbox.is_dir():
            return []
        entries = []
        for path in self.inbox.iterdir():
            # Dotfiles are temp files still being written by the far side.
            if path.name.startswith(".") or not path.is_file():
                continue
            entries.append((path.stat().st_mtime_ns, path.name, path))
        out = []
        for _, name, path in sorted(entries):
            try:
                content = path.read_bytes()
            except FileNotFoundError:  # taken by a concurrent reader
                continue
            out.append(InboundFile(name, content, detect_kind(content), name))
        return out

    async def mark_processed(self, f: InboundFile) -> None:
        await asyncio.to_thread(self._mark_processed, f)

    def _mark_processed(self, f: InboundFile) -> None:
        source = self._inbox_path(f)
        if not source.exists():
            return  # already moved: processing is repeatable after a crash
        day_dir = self.archive / self._now().strftime("%Y-%m-%d")
        day_dir.mkdir(parents=True, exist_ok=True)
        target = _free_name(day_dir, f.name)
        os.replace(source, target)
        log.info("billing.transport.archived", file=f.name, kind=str(f.kind))

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None:
        await asyncio.to_thread(self._quarantine, f, list(reasons))

    def _quarantine(self, f: InboundFile, reasons: list[str]) -> None:
        source = self._inbox_path(f)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = _free_name(self.quarantine_dir, f.name)
        text = "".join(f"{r}\n" for r in (reasons or ["no reason given"]))
        # The reason file is written first, so a crash never leaves an unexplained file.
        _write_atomic(
            self.quarantine_dir, f"{target.name}.reason.txt", text.encode(), overwrite=True
        )
        if source.exists():
            os.replace(source, target)
        else:  # the inbox copy is gone; keep the bytes we were handed
            _write_atomic(self.quarantine_dir, target.name, f.content, overwrite=True)
        log.warning(
            "billing.transport.quarantined", file=f.name, kind=str(f.kind), reasons=len(reasons)
        )

    def _inbox_path(self, f: InboundFile) -> Path:
        return self.inbox / _check_name(f.ref)


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


# ---------------------------------------------------------------- retries


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: the wait after failed attempt ``n`` (1-based) is
    uniform in ``[0, cap(n)]`` with ``cap(n) = min(max_delay, base_delay * 2**(n-1))``."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 <= base_delay <= max_delay")

    def cap(self, attempt: int) -> float:
        if attempt < 1:
            raise ValueError("attempts count from 1")
        if attempt > 64:  # 2**63 already exceeds any sane max_delay; avoid float overflow
            return self.max_delay
        return min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = self.cap(attempt)
        return rng.uniform(0.0, cap) if self.jitter else cap


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    error: str | None  # None for the successful attempt
    transient: bool
    status_code: int | None = None
    delay_after: float | None = None  # seconds slept before the next attempt


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """``sent``; ``gave_up`` after ``max_attempts`` transient failures; ``failed`` on a
    permanent error. The last two should become a work item for a human."""

    status: Literal["sent", "gave_up", "failed"]
    file_name: str
    batch_id: str
    receipt: SendReceipt | None = None
    attempts: tuple[Attempt, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status == "sent"

    @property
    def last_error(self) -> str | None:
        return self.attempts[-1].error if self.attempts else None


async def send_with_retry(
    transport: Transport,
    file: OutgoingFile,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    *,
    rng: random.Random | None = None,
) -> SendOutcome:
    """Send, retrying transient failures; never raises a ``TransportError``."""
    rng = rng or random.SystemRandom()
    attempts: list[Attempt] = []
    for number in range(1, policy.max_attempts + 1):
        try:
            receipt = await transport.send(file)
        except TransientTransportError as exc:
            if number == policy.max_attempts:
                attempts.append(Attempt(number, str(exc), True, exc.status_code))
                break
            wait = policy.delay(number, rng)
            if exc.retry_after is not None:
                wait = max(wait, min(exc.retry_after, policy.max_delay))
            attempts.append(Attempt(number, str(exc), True, exc.status_code, wait))
            log.warning(
                "billing.transport.retry",
                file=file.name,
                batch_id=file.batch_id,
                attempt=number,
                delay=round(wait, 3),
                status=exc.status_code,
            )
            await sleep(wait)
        except PermanentTransportError as exc:
            attempts.append(Attempt(number, str(exc), False, exc.status_code))
            log.error(
                "billing.transport.failed",
                file=file.name,
                batch_id=file.batch_id,
                attempt=number,
                status=exc.status_code,
            )
            return SendOutcome("failed", file.name, file.batch_id, None, tuple(attempts))
        else:
            attempts.append(Attempt(number, None, False, receipt.status_code))
            return SendOutcome("sent", file.name, file.batch_id, receipt, tuple(attempts))
    log.error(
        "billing.transport.gave_up", file=file.name, batch_id=file.batch_id, attempts=len(attempts)
    )
    return SendOutcome("gave_up", file.name, file.batch_id, None, tuple(attempts))
