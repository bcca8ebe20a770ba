"""Clearinghouse transport port: the ``Transport`` protocol, the files that cross it, the
errors it raises and inbound kind detection (the adapters and retries build on these)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from shared.x12.tokenizer import X12SyntaxError, tokenize

__all__ = [
    "FileConflictError",
    "InboundFile",
    "InboundKind",
    "OutgoingFile",
    "PermanentTransportError",
    "SendReceipt",
    "TransientTransportError",
    "Transport",
    "TransportError",
    "content_hash",
    "detect_kind",
]

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
