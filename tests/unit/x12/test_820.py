"""820 (005010X218) premium payments: built files pass pyx12's X218 map, parse back to the
same payments, and balance BPR02 against the RMR and ADX amounts."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.tokenizer import X12SyntaxError
from shared.x12.validate import validate_x12
from shared.x12.x820 import (
    Adjustment820,
    Individual820,
    Premium820,
    Remittance820,
    build_820,
    parse_820,
)

PARTIES = Parties("ZZ", "STATEMCD", "ZZ", "PHARMNET")
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def _premium(total: int | None = None) -> Premium820:
    individuals = (
        Individual820("1", "M001", (Remittance820("AZ", "POL1", 2500, 2500, *MARCH),)),
        Individual820(
            "2",
            "M002",
            (Remittance820("AZ", "POL2", 4000, None, *MARCH, (Adjustment820(-2500, "53"),)),),
        ),
    )
    return Premium820(
        total=4000 if total is None else total,
        credit=True,
        payment_date=date(2026, 3, 5),
        trace_number="TRACE1",
        payer_name="STATE MCD",
        payee_name="CORNER PHARMACY",
        individuals=individuals,
    )


def _build(*payments: Premium820) -> str:
    return build_820(
        payments,
        parties=PARTIES,
        control=ControlNumbers(7, 7, 1),
        created_at=datetime(2026, 3, 5, 9, 0),
        payee_id="123456789",
    )


def test_built_820_passes_pyx12_and_parses_back() -> None:
    text = _build(_premium())
    assert validate_x12(text) == []
    (got,) = parse_820(text)
    assert got.balanced
    assert (got.total, got.credit, got.trace_number, got.payment_date) == (
        4000,
        True,
        "TRACE1",
        date(2026, 3, 5),
    )
    assert [
        (i.member_id, [(r.amount, r.period_begin) for r in i.remittances]) for i in got.individuals
    ] == [
        ("M001", [(2500, date(2026, 3, 1))]),
        ("M002", [(4000, date(2026, 3, 1))]),
    ]
    assert got.individuals[1].remittances[0].adjustments == (Adjustment820(-2500, "53"),)


def test_unbalanced_and_member_id_from_nm1() -> None:
    text = _build(_premium(total=9999))
    (got,) = parse_820(text)
    assert not got.balanced
    assert got.detail_total == 4000
    # No ENT04: the member id comes from NM1*IL NM109.
    plain = text.replace("ENT*1*2J*EI*M001~", "ENT*1~")
    assert parse_820(plain)[0].individuals[0].member_id == "M001"


def test_not_an_820_is_refused() -> None:
    with pytest.raises(X12SyntaxError):
        parse_820(_build(_premium()).replace("ST*820*", "ST*835*"))
    with pytest.raises(X12SyntaxError):
        parse_820(_build(_premium()).replace("RD8*20260301", "RD8*2026030X"))


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10_000_000),
            st.integers(min_value=-1_000_000, max_value=0),
            st.integers(min_value=1, max_value=12),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_round_trip_keeps_every_amount_and_balances(
    entries: list[tuple[int, int, int]],
) -> None:
    individuals = tuple(
        Individual820(
            str(k),
            f"M{k}",
            (
                Remittance820(
                    "AZ",
                    f"P{k}",
                    paid,
                    None,
                    date(2026, month, 1),
                    date(2026, month, 28),
                    (Adjustment820(adj, "53"),) if adj else (),
                ),
            ),
        )
        for k, (paid, adj, month) in enumerate(entries, start=1)
    )
    total = sum(p + a for p, a, _ in entries)
    prem = Premium820(total, True, date(2026, 3, 5), "T", "PAYER", "PHARMACY", individuals)
    (got,) = parse_820(_build(prem))
    assert got.balanced
    assert got.individuals == tuple(
        Individual820(i.number, i.member_id, i.remittances, i.adjustments, g.segment_index)
        for i, g in zip(individuals, got.individuals, strict=True)
    )
