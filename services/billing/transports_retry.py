"""Sending through any transport with retries: exponential backoff with full jitter for
transient failures, honouring ``Retry-After``, and the outcome of every attempt."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from services.billing.transports_types import (
    OutgoingFile,
    PermanentTransportError,
    SendReceipt,
    TransientTransportError,
    Transport,
)
from shared.logging import get_logger

__all__ = ["Attempt", "RetryPolicy", "SendOutcome", "send_with_retry"]

log = get_logger("billing.transport")


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
