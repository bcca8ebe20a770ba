"""X12 834 (005010X220A1) members as roster changes.

INS03 021 add, 001 change and 030 audit become upserts; 024 terminate ends coverage on DTP
349 (coverage) or 357 (member); 025 reinstate reopens it. Coverage dates come from HD's DTP
348/349, falling back to the member's DTP 356/357. A file with BGN08 RX (replace) is a full
file: members it does not list lose their open coverage the day before the file's effective
date (DTP 007, else BGN03). BGN08 4 (verify) is compared and reported, never applied.
Row numbers are the member's position in the file (first INS = 1).
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
from shared.x12.x834 import (
    ACTION_REPLACE,
    ACTION_VERIFY,
    MAINT_REINSTATE,
    MAINT_TERMINATE,
    parse_834,
)


def read_834(content: bytes) -> ParsedFile:
    try:
        enrollments = parse_834(content)
    except X12SyntaxError as exc:
        return ParsedFile(SpanSource.X12_834, [], [RowProblem(0, "file", str(exc))])
    changes: list[MemberChange] = []
    problems: list[RowProblem] = []
    full_as_of = None
    verify = False
    row = 0
    for enrollment in enrollments:
        if enrollment.action_code == ACTION_REPLACE:
            full_as_of = enrollment.file_effective_date or enrollment.created
        verify = verify or enrollment.action_code == ACTION_VERIFY
        for m in enrollment.members:
            row += 1
            member_id = m.member_id or m.subscriber_id
            if not member_id:
                problems.append(RowProblem(row, "NM109", "member has no id (NM109 or REF*0F)"))
                continue
            addr = m.address
            demo = Demographics(
                last_name=m.last_name,
                first_name=m.first_name,
                birth_date=m.birth_date,
                sex=m.sex if m.sex in ("M", "F", "U") else "U",
                address1=addr.line1 if addr else None,
                city=addr.city if addr else None,
                state=addr.state[:2].upper() if addr and addr.state else None,
                zip=addr.postal_code.replace("-", "")[:9] if addr and addr.postal_code else None,
            )
            windows = [
                (c.begin or m.eligibility_begin, c.end or m.eligibility_end, c.maintenance_type)
                for c in m.coverages
            ] or [(m.eligibility_begin, m.eligibility_end, "")]
            for begin, end, hd01 in windows:
                if m.maintenance_type == MAINT_TERMINATE or hd01 == MAINT_TERMINATE:
                    if end is None:
                        problems.append(
                            RowProblem(row, "DTP*349", "a termination needs DTP*349 or DTP*357")
                        )
                        continue
                    action = Action.TERMINATE
                elif m.maintenance_type == MAINT_REINSTATE:
                    action = Action.REINSTATE
                else:
                    action = Action.UPSERT
                    if begin is None:
                        problems.append(
                            RowProblem(row, "DTP*348", "coverage needs DTP*348 or DTP*356")
                        )
                        continue
                if (
                    begin is not None
                    and end is not None
                    and end < begin
                    and action is not Action.TERMINATE
                ):
                    problems.append(RowProblem(row, "DTP*349", "coverage ends before it begins"))
                    continue
                changes.append(
                    MemberChange(
                        row=row,
                        member_id=member_id,
                        action=action,
                        demographics=demo,
                        effective_from=begin,
                        effective_to=end,
                        group=m.group_number or None,
                        relationship=m.relationship if len(m.relationship) == 2 else "18",
                    )
                )
    parsed = ParsedFile(
        SpanSource.X12_834, changes, problems, verify_only=verify and full_as_of is None
    )
    if full_as_of is not None:
        parsed.full_file_as_of = full_as_of
    return parsed


ONE_DAY = timedelta(days=1)
