"""834/271/CSV readers: files become member changes with row numbers, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.coverage.rosters.changes import Action
from services.coverage.rosters.importer import read_csv
from services.coverage.rosters.x271_import import read_271
from services.coverage.rosters.x834_import import read_834
from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.x271 import (
    Benefit,
    DateRange,
    EligibilityResponse,
    SubscriberEligibility,
    build_271,
)
from shared.x12.x834 import Coverage, Enrollment834, MemberRecord, build_834

PARTIES = Parties("ZZ", "PAYER", "ZZ", "PHARMACY")
CONTROL = ControlNumbers(1, 1, 1)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _member(mid: str, ins03: str, begin: date | None, end: date | None = None) -> MemberRecord:
    return MemberRecord(
        is_subscriber=True,
        relationship="18",
        maintenance_type=ins03,
        subscriber_id=mid,
        member_id=mid,
        last_name="Doe",
        birth_date=date(1950, 1, 1),
        sex="F",
        coverages=[Coverage(maintenance_type=ins03, insurance_line="HLT", begin=begin, end=end)],
    )


def _834(action: str, members: list[MemberRecord], effective: date | None = None) -> bytes:
    e = Enrollment834(
        action_code=action,
        reference="R",
        created=date(2025, 6, 1),
        sponsor_name="S",
        payer_name="P",
        file_effective_date=effective,
        members=members,
    )
    return build_834([e], parties=PARTIES, control=CONTROL, created_at=NOW).encode()


def test_834_maintenance_types_become_actions() -> None:
    parsed = read_834(
        _834(
            "2",
            [
                _member("A", "021", date(2025, 1, 1)),
                _member("B", "024", None, date(2025, 3, 31)),
                _member("C", "025", date(2025, 1, 1)),
                _member("D", "001", date(2025, 2, 1), date(2025, 12, 31)),
            ],
        )
    )
    assert parsed.problems == []
    assert [(c.row, c.member_id, c.action) for c in parsed.changes] == [
        (1, "A", Action.UPSERT),
        (2, "B", Action.TERMINATE),
        (3, "C", Action.REINSTATE),
        (4, "D", Action.UPSERT),
    ]
    assert parsed.changes[1].effective_to == date(2025, 3, 31)
    assert parsed.full_file_as_of is None


def test_834_full_file_and_missing_dates() -> None:
    full = read_834(_834("RX", [_member("A", "030", date(2025, 1, 1))], date(2025, 7, 1)))
    assert full.full_file_as_of == date(2025, 7, 1)
    bad = read_834(_834("2", [_member("A", "021", None), _member("B", "024", None)]))
    assert [(p.row, p.field) for p in bad.problems] == [(1, "DTP*348"), (2, "DTP*349")]
    assert read_834(b"garbage").problems[0].field == "file"


def test_271_active_and_inactive_benefits() -> None:
    sub = SubscriberEligibility(
        member_id="E1",
        last_name="Doe",
        birth_date=date(1960, 1, 1),
        benefits=[
            Benefit(code="1", service_types=("30",), dates={"291": DateRange(date(2025, 1, 1))}),
            Benefit(code="1", service_types=("88",), dates={"291": DateRange(date(2024, 1, 1))}),
            Benefit(code="6", service_types=("30",), dates={"291": DateRange(date(2025, 9, 1))}),
        ],
    )
    text = build_271(
        [EligibilityResponse("P", "PID", "R", "RID", created=date(2025, 6, 1), subscribers=[sub])],
        parties=PARTIES,
        control=CONTROL,
        created_at=NOW,
    )
    parsed = read_271(text.encode())
    assert parsed.problems == []
    assert [(c.action, c.effective_from, c.effective_to) for c in parsed.changes] == [
        (Action.UPSERT, date(2025, 1, 1), None),
        (Action.TERMINATE, None, date(2025, 8, 31)),
    ]


def test_csv_rows_keep_row_numbers_and_column_map() -> None:
    text = "ID,last_name,first_name,birth_date,effective_from\nM1,Doe,J,1950-01-01,2025-01-01\n"
    parsed = read_csv(text.encode(), {"member_id": "ID"})
    assert parsed.problems == []
    assert parsed.changes[0].row == 2
    assert parsed.changes[0].member_id == "M1"
    assert read_csv(b"\xff\xfe", None).problems[0].field == "file"
