from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.coverage.domain.spans import PART_D_ELIGIBLE, SpanSource
from services.coverage.rosters.csv_roster import (
    ColumnMap,
    RosterRow,
    RowError,
    Sex,
    parse_roster,
)

HEADER = (
    "member_id,last_name,first_name,birth_date,sex,address1,city,state,zip,group,"
    "relationship,effective_from,effective_to,rate_tier,opt_out_date,part_d_eligible"
)
GOOD = "M1,Doe,Jane,1950-02-03,F,1 Main St,Springfield,IL,62701,G1,18,2026-01-01,,standard,,N"


def errors_of(text: str) -> set[tuple[int, str]]:
    return {(e.row_number, e.field) for e in parse_roster(text).errors}


def test_good_row_parses_every_field() -> None:
    result = parse_roster(f"{HEADER}\n{GOOD}\n")
    assert result.errors == []
    [row] = result.rows
    assert row == RosterRow(
        row_number=2,
        member_id="M1",
        last_name="Doe",
        first_name="Jane",
        birth_date=date(1950, 2, 3),
        sex=Sex.FEMALE,
        address1="1 Main St",
        city="Springfield",
        state="IL",
        zip="62701",
        group="G1",
        relationship="18",
        effective_from=date(2026, 1, 1),
        effective_to=None,
        rate_tier="standard",
        opt_out_date=None,
        part_d_eligible=False,
    )


def test_us_dates_zip_plus_four_defaults_and_part_d() -> None:
    line = " M2 , Roe ,John,02/03/1950,m,,,il,62701-1234,,,01/15/2026,12/31/2026,,,y"
    [row] = parse_roster(f"{HEADER}\n{line}\n").rows
    assert (row.member_id, row.last_name, row.birth_date) == ("M2", "Roe", date(1950, 2, 3))
    assert (row.sex, row.state, row.zip, row.relationship) == (Sex.MALE, "IL", "627011234", "18")
    assert (row.effective_from, row.effective_to) == (date(2026, 1, 15), date(2026, 12, 31))
    assert (row.address1, row.group, row.rate_tier) == (None, None, None)
    assert row.part_d_eligible
    assert row.population_flags == frozenset({PART_D_ELIGIBLE})


def test_every_bad_row_is_reported_with_row_number_and_field() -> None:
    lines = [
        HEADER,
        GOOD,  # row 2 fine
        ",Doe,Jane,1950-02-03,F,,,,,,,2026-01-01,,,,N",  # 3: member_id blank
        "M3,Doe,Jane,1950-13-03,X,,,Illinois,6270,,1,2026-02-30,,,,maybe",  # 4: many fields
        "M4,Doe,Jane,2027-01-01,F,,,,,,,2026-01-01,2025-12-31,,2025-01-01,N",  # 5: order
        "M5,Doe,Jane",  # 6: short row
        "M1,Doe,Jane,1950-02-03,F,,,,,,,2026-01-01,,,,N",  # 7: duplicate of row 2
        "M6,Doe,Jane,20260101,F,,,,,,,2026-1-1,,,,N",  # 8: wrong date formats
    ]
    result = parse_roster("\n".join(lines) + "\n")
    assert [r.row_number for r in result.rows] == [2]
    assert {(e.row_number, e.field) for e in result.errors} == {
        (3, "member_id"),
        (4, "birth_date"),
        (4, "sex"),
        (4, "state"),
        (4, "zip"),
        (4, "relationship"),
        (4, "effective_from"),
        (4, "part_d_eligible"),
        (5, "birth_date"),
        (5, "effective_to"),
        (5, "opt_out_date"),
        (6, "row"),
        (7, "member_id"),
        (8, "birth_date"),
        (8, "effective_from"),
    }
    dup = next(e for e in result.errors if e.row_number == 7)
    assert "row 2" in dup.message


def test_missing_required_column_stops_with_header_errors() -> None:
    result = parse_roster("member_id,last_name\nM1,Doe\n")
    assert result.rows == []
    assert {(e.row_number, e.field) for e in result.errors} == {
        (1, "first_name"),
        (1, "birth_date"),
        (1, "effective_from"),
    }


def test_optional_columns_may_be_absent_and_extra_columns_ignored() -> None:
    text = "Member_ID, Last_Name ,first_name,birth_date,effective_from,notes\nM1,Doe,Jane,1950-01-01,2026-01-01,hi\n"
    [row] = parse_roster(text).rows
    assert (row.sex, row.relationship, row.part_d_eligible, row.zip) == (
        Sex.UNKNOWN,
        "18",
        False,
        None,
    )


def test_custom_column_map() -> None:
    columns = ColumnMap(member_id="Subscriber ID", birth_date="DOB", effective_from="Start")
    text = "Subscriber ID,last_name,first_name,DOB,Start\nS9,Doe,Jane,01/02/1960,2026-03-01\n"
    [row] = parse_roster(text, columns).rows
    assert (row.member_id, row.birth_date) == ("S9", date(1960, 1, 2))


def test_duplicate_mapped_header_is_an_error_but_unmapped_duplicates_are_not() -> None:
    dup_mapped = "member_id,member_id,last_name,first_name,birth_date,effective_from\n"
    assert errors_of(dup_mapped) == {(1, "member_id")}
    dup_other = "member_id,x,x,last_name,first_name,birth_date,effective_from\nM,1,2,D,J,1950-01-01,2026-01-01\n"
    assert parse_roster(dup_other).errors == []


def test_blank_rows_inside_are_reported_trailing_ones_are_not() -> None:
    text = f"{HEADER}\n{GOOD}\n\n,,,,,,,,,,,,,,,\n{GOOD.replace('M1', 'M2')}\n\n\n"
    result = parse_roster(text)
    assert [r.row_number for r in result.rows] == [2, 5]
    assert result.errors == [RowError(3, "row", "blank row"), RowError(4, "row", "blank row")]


def test_empty_file_bom_and_malformed_quotes() -> None:
    assert errors_of("") == {(1, "header")}
    [row] = parse_roster(f"\ufeff{HEADER}\n{GOOD}\n").rows
    assert row.member_id == "M1"
    bad_quote = GOOD.replace("Doe", '"Doe"x')
    result = parse_roster(f"{HEADER}\n{bad_quote}\n{GOOD.replace('M1', 'M2')}\n")
    assert {(e.row_number, e.field) for e in result.errors} == {(2, "row")}
    assert [r.row_number for r in result.rows] == [3]


def test_quoted_fields_with_commas() -> None:
    line = 'M1,"Doe, Jr.",Jane,1950-02-03,F,"1 Main St, Apt 2",Springfield,IL,62701,,18,2026-01-01,,,,N'
    [row] = parse_roster(f"{HEADER}\n{line}\n").rows
    assert (row.last_name, row.address1) == ("Doe, Jr.", "1 Main St, Apt 2")


def test_row_to_span_is_a_csv_version_of_its_logical_span() -> None:
    [row] = parse_roster(f"{HEADER}\n{GOOD.replace(',N', ',Y')}\n").rows
    at = datetime(2026, 1, 5, tzinfo=UTC)
    made = row.to_span(patient_id="p1", payer_id="pay", contract_id="c1", recorded_at=at)
    assert made.span_id == "pay|c1|M1|2026-01-01"
    assert made.source is SpanSource.CSV
    assert made.population_flags == frozenset({PART_D_ELIGIBLE})
    assert (made.effective_from, made.rate_tier, made.recorded_at) == (
        date(2026, 1, 1),
        "standard",
        at,
    )


def test_column_map_field_order_matches_row_fields() -> None:
    # The parser unpacks cells in ColumnMap order; RosterRow lists the same fields in order.
    names = [f.name for f in dataclasses.fields(ColumnMap)]
    assert names == [f for f in RosterRow._fields if f != "row_number"]


CELL = st.text(alphabet="AZaz09-/ ,\"'", max_size=12)


@given(st.lists(st.lists(CELL, min_size=16, max_size=16), max_size=12))
def test_no_row_is_silently_dropped(records: list[list[str]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER.split(","))
    writer.writerows(records)
    result = parse_roster(buffer.getvalue())
    accounted = {r.row_number for r in result.rows} | {e.row_number for e in result.errors}
    trailing_blank = 0
    for record in reversed(records):
        if any(cell.strip() for cell in record):
            break
        trailing_blank += 1
    expected = set(range(2, 2 + len(records) - trailing_blank))
    assert accounted == expected
    assert not {r.row_number for r in result.rows} & {e.row_number for e in result.errors}
