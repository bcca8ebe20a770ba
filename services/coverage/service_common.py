"""Helpers the coverage use-case modules share: page cursors."""

from __future__ import annotations

from services.coverage import repository as repo
from shared.errors import FieldProblem, RuleViolation


def _cursor(after: str | None) -> str | None:
    if after is None:
        return None
    cursor = repo.as_uuid(after)
    if cursor is None:
        raise RuleViolation(
            "after must be the `next` cursor of a previous page",
            code="invalid_cursor",
            errors=(FieldProblem("after", "not a cursor", "invalid"),),
        )
    return cursor
