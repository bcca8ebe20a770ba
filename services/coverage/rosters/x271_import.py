"""X12 271 (005010X279A1) eligibility responses as roster changes.

EB01 1 (active) becomes a span over the benefit's dates (DTP 291/346/347 at benefit level,
else the member's); general plan coverage (EB03 30) is preferred when present. EB01 6
(inactive) ends the member's coverage the day before the inactive benefit's begin date.
Members answered only with AAA errors are reported as warnings, not applied.
Row numbers are the member's position in the file (first HL 22/23 = 1).
"""

from __future__ import annotations

from datetime import timedelta

from services.coverage.domain.spans import SpanSource
from services.coverage.rosters.changes import (
    Action,
    Demographics,
    MemberChange,
    ParsedFile,
    RowProblem,
)
from shared.x12.tokenizer import X12SyntaxError
from shared.x12.x271 import parse_271

_ACTIVE = {"1"}
_INACTIVE = {"6"}


def read_271(content: bytes) -> ParsedFile:
    try:
        responses = parse_271(content)
    except X12SyntaxError as exc:
        return ParsedFile(SpanSource.X12_271, [], [RowProblem(0, "file", str(exc))])
    changes: list[MemberChange] = []
    problems: list[RowProblem] = []
    warnings: list[str] = []
    row = 0
    for resp in responses:
        for sub in resp.subscribers:
            row += 1
            if not sub.member_id:
                problems.append(RowProblem(row, "NM109", "member has no id"))
                continue
            if sub.errors and not sub.benefits:
                codes = ", ".join(e.reason_code for e in sub.errors)
                warnings.append(f"row {row}: payer answered with AAA {codes}; nothing applied")
                continue
            demo = Demographics(
                last_name=sub.last_name,
                first_name=sub.first_name,
                birth_date=sub.birth_date,
                sex=sub.sex if sub.sex in ("M", "F", "U") else "U",
            )
            active = [b for b in sub.benefits if b.code in _ACTIVE]
            general = [b for b in active if "30" in b.service_types]
            windows = sorted({(b.begin, b.end) for b in (general or active)}, key=str)
            for begin, end in windows:
                if begin is None:
                    problems.append(
                        RowProblem(row, "DTP*291", "active coverage needs DTP*291 or DTP*346")
                    )
                    continue
                changes.append(MemberChange(row, sub.member_id, Action.UPSERT, demo, begin, end))
            for b in sub.benefits:
                if b.code not in _INACTIVE:
                    continue
                begin = b.begin or resp.created
                if begin is None:
                    problems.append(
                        RowProblem(row, "DTP*291", "inactive coverage needs a date it applies from")
                    )
                    continue
                changes.append(
                    MemberChange(
                        row, sub.member_id, Action.TERMINATE, demo, None, begin - timedelta(days=1)
                    )
                )
    return ParsedFile(SpanSource.X12_271, changes, problems, warnings=warnings)
