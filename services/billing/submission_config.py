"""Submission settings, the transports batches go through (by name) and the results of a
run: what the record, send and confirm steps share (see ``submission``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.billing.transports import (
    DirectoryTransport,
    HttpTransport,
    PermanentTransportError,
    RetryPolicy,
    Transport,
)
from shared.config import Settings
from shared.x12.x837p import Submitter

BATCH = "batch"

# Who we are in 1000A / ISA06 until the lead adds MTM_SUBMITTER_* settings.
DEFAULT_RETRY = RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=60.0)
DEFAULT_SUBMITTER = Submitter("MTM BILLING", "MTMBILLING", "BILLING OFFICE", "5555550100")


@dataclass(frozen=True, slots=True)
class SubmissionConfig:
    """Submission settings. ``from_settings`` derives them from ``Settings`` (``var_dir``)
    plus the documented defaults below; the MTM_* variables that will set them are listed
    in the README's settings table once added to ``Settings``."""

    mailbox_dir: Path  # MTM_CLEARINGHOUSE_DIR, default <var_dir>/mailbox
    http_url: str = ""  # MTM_CLEARINGHOUSE_URL; empty: the http transport is off
    http_auth_header: str = ""  # MTM_CLEARINGHOUSE_AUTH_HEADER, "Name: value"
    http_timeout_seconds: float = 30.0  # MTM_CLEARINGHOUSE_TIMEOUT_SECONDS
    retry: RetryPolicy = DEFAULT_RETRY  # MTM_SUBMISSION_RETRY_ATTEMPTS/_BASE_SECONDS/_MAX_SECONDS
    submitter: Submitter = DEFAULT_SUBMITTER  # MTM_SUBMITTER_ID/NAME/CONTACT/PHONE
    usage: str = "T"  # MTM_X12_USAGE: ISA15, P in production
    max_claims_per_file: int = 5000  # MTM_SUBMISSION_MAX_CLAIMS_PER_FILE
    max_claims_per_run: int = 50_000  # MTM_SUBMISSION_MAX_CLAIMS_PER_RUN

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SubmissionConfig:
        values: dict[str, Any] = {
            "mailbox_dir": Path(settings.clearinghouse_dir or Path(settings.var_dir) / "mailbox"),
            "http_url": settings.clearinghouse_url,
            "http_auth_header": settings.clearinghouse_auth_header,
            "http_timeout_seconds": settings.clearinghouse_timeout_seconds,
            "retry": RetryPolicy(
                max_attempts=settings.submission_retry_attempts,
                base_delay=settings.submission_retry_base_seconds,
                max_delay=settings.submission_retry_max_seconds,
            ),
            "submitter": Submitter(
                settings.submitter_name,
                settings.submitter_id,
                settings.submitter_contact,
                settings.submitter_phone,
            ),
            "usage": settings.x12_usage,
            "max_claims_per_file": settings.submission_max_claims_per_file,
            "max_claims_per_run": settings.submission_max_claims_per_run,
        }
        values.update(overrides)
        return cls(**values)


class Transports:
    """The transports batches can go through, by name (``directory``, ``http``)."""

    def __init__(
        self, config: SubmissionConfig, overrides: Mapping[str, Transport] | None = None
    ) -> None:
        self._config = config
        self._made: dict[str, Transport] = dict(overrides or {})
        self._owned: list[HttpTransport] = []

    def get(self, name: str) -> Transport:
        found = self._made.get(name)
        if found is not None:
            return found
        if name == "directory":
            made: Transport = DirectoryTransport(self._config.mailbox_dir)
        elif name == "http":
            if not self._config.http_url or not self._config.http_auth_header:
                raise PermanentTransportError(
                    "the http transport is not configured (clearinghouse URL and auth header)"
                )
            http = HttpTransport(
                self._config.http_url,
                self._config.http_auth_header,
                self._config.http_timeout_seconds,
            )
            self._owned.append(http)
            made = http
        else:
            raise PermanentTransportError(f"unknown transport {name!r}")
        self._made[name] = made
        return made

    def inbound(self) -> list[Transport]:
        """Every transport to read acknowledgments from: the mailbox always, http when set."""
        names = ["directory"]
        if "http" in self._made or (self._config.http_url and self._config.http_auth_header):
            names.append("http")
        return [self.get(n) for n in names]

    async def aclose(self) -> None:
        for http in self._owned:
            await http.aclose()


@dataclass(frozen=True, slots=True)
class RunHooks:
    """Test seams (off by default): called after the record commit / after the transport
    confirmed and before the confirm transaction. A crash test makes them ``os._exit``."""

    after_record: Callable[[list[str]], None] | None = None
    after_send: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch_id: str
    status: str  # recorded | sent | failed | busy (another process is sending it)
    file_name: str
    claim_count: int
    attempts: int = 0
    error: str | None = None


@dataclass(slots=True)
class RunResult:
    recovered: list[BatchResult] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    held_claims: list[str] = field(default_factory=list)
