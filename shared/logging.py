"""structlog JSON logging with request/job context and PHI redaction.

Log events are dotted names (`billing.session.received`) with ids. PHI (names, birth dates,
member ids, addresses) must never reach a log line: `redact_phi` drops values under PHI keys
at any depth, and stdlib loggers (uvicorn, arq, alembic) are routed through the same chain.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

# Keys whose values are PHI (or may carry it). Matched case-insensitively on the key name.
PHI_KEYS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "middle_name",
        "patient_name",
        "full_name",
        "birth_date",
        "dob",
        "date_of_birth",
        "member_id",
        "subscriber_id",
        "ssn",
        "address",
        "address1",
        "address2",
        "street",
        "phone",
        "email",
        "patient",
        "subscriber",
        "body",
        "payload",
        "demographics",
    }
)

# Free-text PHI that can hide in messages: ISO birth dates after a PHI-ish word, X12 NM1/DMG
# segments. The key-based rule does most of the work; these catch the rest.
_X12_PHI = re.compile(r"(NM1\*(?:IL|QC)\*[^~\n]*|DMG\*D8\*\d{8}[^~\n]*)")


_KEY_VALUE = re.compile(
    r"""(['"]?\b(?:"""
    + "|".join(sorted(PHI_KEYS, key=len, reverse=True))
    + r""")\b['"]?\s*[:=]\s*)('[^']*'|"[^"]*"|[^\s,}\]]+)""",
    re.IGNORECASE,
)


def scrub_text(text: str) -> str:
    """Redact `member_id: X`-style pairs and X12 name/birth segments inside free text."""
    if "NM1*" in text or "DMG*" in text:
        text = _X12_PHI.sub(REDACTED, text)
    return _KEY_VALUE.sub(lambda m: m.group(1) + REDACTED, text)


_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


class RedactingFilter(logging.Filter):
    """For stdlib records: third-party code formats its own messages (`%s` of a dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            record.msg, record.args = scrub_text(message), None
        elif isinstance(record.msg, str):
            record.msg = scrub_text(record.msg)
        for key in list(vars(record)):
            # `name` is the logger's name on every record; only `extra=` fields can carry PHI.
            if key not in _RECORD_ATTRS and key.lower() in PHI_KEYS:
                setattr(record, key, REDACTED)
        return True


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if str(k).lower() in PHI_KEYS else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def redact_phi(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in PHI_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_phi,
    ]


def configure_logging(
    level: str = "INFO", *, json: bool = True, stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once."""
    out = stream or sys.stdout
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_phi,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # arq logs a line per job at INFO; at thousands of jobs a second that is noise and cost.
    for noisy in ("uvicorn.access", "arq.worker", "arq.jobs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "arq", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


bind_context = structlog.contextvars.bind_contextvars
get_contextvars = structlog.contextvars.get_contextvars
clear_context = structlog.contextvars.clear_contextvars
bound_context = structlog.contextvars.bound_contextvars
