"""Typed errors raised by use cases and domain code; `shared/http.py` maps them to HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One offending field: a dotted path into the request ('lines[0].units') and why."""

    field: str
    message: str
    code: str = "invalid"


@dataclass(eq=False)
class AppError(Exception):
    """Base of every error with a stable machine code and a message meant for people."""

    message: str
    code: str = "error"
    errors: tuple[FieldProblem, ...] = field(default_factory=tuple)
    action: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)


class NotFound(AppError):
    """The entity does not exist for this tenant (other tenants' ids look the same)."""


class Conflict(AppError):
    """The request conflicts with current state (idempotency mismatch, duplicate, state)."""


class StaleVersion(Conflict):
    """Optimistic locking: the row changed since the caller read it."""


class RuleViolation(AppError):
    """The request is well-formed but breaks a business rule (422 with field paths)."""


class BadRequest(AppError):
    """Malformed input (400)."""


class Unauthorized(AppError):
    """Missing or unknown API key (401)."""


class Forbidden(AppError):
    """The key's role may not call this route (403)."""


class ServiceUnavailable(AppError):
    """A dependency (PostgreSQL, Redis) is not reachable (503)."""
