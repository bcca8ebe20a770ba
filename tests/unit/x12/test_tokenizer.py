"""Tokenizer, writer and envelope arithmetic."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from shared.x12.envelope import ControlNumbers, Parties, wrap_transactions
from shared.x12.tokenizer import Delimiters, X12SyntaxError, iter_transactions, tokenize
from shared.x12.writer import X12WriteError, X12Writer

SAMPLES = Path("/work/shared/samples")
SAMPLE_837 = (SAMPLES / "837p_one_claim.x12").read_text()
SAMPLE_835 = (SAMPLES / "835_one_claim.x12").read_text()


def test_reads_delimiters_from_isa() -> None:
    delims, segments = tokenize(SAMPLE_837)
    assert delims == Delimiters(element="*", segment="~", component=":", repetition="^")
    assert segments[0][0] == "ISA"
    assert len(segments[0]) == 17
    assert segments[-1] == ["IEA", "1", "000000001"]
    assert ["SV1", "HC:99605", "100.00", "UN", "1", "", "", "1:2"] in segments


def test_bytes_bom_leading_whitespace_and_crlf() -> None:
    raw = ("\ufeff \r\n" + SAMPLE_835.replace("~", "~\r\n")).encode("utf-8")
    _, crlf = tokenize(raw)
    _, plain = tokenize(SAMPLE_835)
    assert crlf == plain


@pytest.mark.parametrize(
    ("element", "segment", "component", "repetition"),
    [("|", "\n", ">", "^"), ("\x1d", "\x1c", "\x1f", "\x1e"), ("!", "'", "\\", "{")],
)
def test_other_delimiters(element: str, segment: str, component: str, repetition: str) -> None:
    table = str.maketrans({"*": element, "~": segment, ":": component, "^": repetition})
    text = SAMPLE_837.replace("\n", "").translate(table)
    delims, segments = tokenize(text)
    assert delims == Delimiters(element, segment, component, repetition)
    _, expected = tokenize(SAMPLE_837)
    assert segments == [[e.translate(table) for e in seg] for seg in expected]


def test_line_break_inside_data_is_not_a_segment_boundary() -> None:
    # Fixed-width wrapped files break lines mid-segment; only '~' ends a segment.
    wrapped = SAMPLE_837.replace("\n", "")
    wrapped = "\n".join(wrapped[i : i + 80] for i in range(0, len(wrapped), 80))
    assert tokenize(wrapped)[1] == tokenize(SAMPLE_837)[1]


def test_errors_say_where() -> None:
    with pytest.raises(X12SyntaxError, match="offset 0"):
        tokenize("GS*HC~")
    with pytest.raises(X12SyntaxError, match="fewer than 16"):
        tokenize("ISA*00*01~")
    broken = SAMPLE_837.replace("REF*EI", "r!f*EI")
    with pytest.raises(X12SyntaxError, match=r"segment 12"):
        tokenize(broken)


def test_envelope_check_catches_bad_counts() -> None:
    _, segments = tokenize(SAMPLE_837.replace("SE*27*0001", "SE*26*0001"))
    with pytest.raises(X12SyntaxError, match="SE01"):
        list(iter_transactions(segments))
    _, segments = tokenize(SAMPLE_837.replace("IEA*1*000000001", "IEA*1*000000009"))
    with pytest.raises(X12SyntaxError, match="IEA02"):
        list(iter_transactions(segments))
    ((_, group, tset),) = list(iter_transactions(tokenize(SAMPLE_837)[1]))
    assert (group.control_number, tset.control_number, len(tset.segments)) == ("1", "0001", 27)


def test_writer_rejects_delimiters_and_drops_trailing_empties() -> None:
    w = X12Writer()
    assert w.format("NM1", "85", "2", "ACME", None, None) == "NM1*85*2*ACME~"
    assert w.format("SV1", ("HC", "99605", ""), "10") == "SV1*HC:99605*10~"
    with pytest.raises(X12WriteError, match=r"NM103 contains delimiter '\*'"):
        w.format("NM1", "85", "2", "A*B")
    with pytest.raises(X12WriteError, match="SV101-2"):
        w.format("SV1", ("HC", "99:605"))
    with pytest.raises(X12WriteError, match="distinct"):
        X12Writer(Delimiters("*", "*", ":", "^"))
    with pytest.raises(X12WriteError, match="letters"):
        X12Writer(Delimiters(".", "~", ":", "^"))


def test_isa_fixed_width_and_envelope_counts() -> None:
    w = X12Writer(line_break="\n")
    text = wrap_transactions(
        w,
        Parties("ZZ", "SENDER", "30", "123456789", "P"),
        ControlNumbers(isa13=42, gs06=7, st02_start=9),
        datetime(2026, 1, 2, 3, 4),
        functional_id="HC",
        set_id="837",
        version="005010X222A1",
        bodies=[[w.format("BHT", "0019")], [w.format("BHT", "0019"), w.format("REF", "X", "1")]],
    )
    isa = text.split("\n")[0]
    assert len(isa) == 106
    assert isa[3] == "*"
    assert isa[104] == ":"
    assert isa[105] == "~"
    _, segments = tokenize(text)
    assert segments[0][6] == "SENDER         "
    assert segments[0][13] == "000000042"
    assert segments[0][9:11] == ["260102", "0304"]
    assert segments[0][15] == "P"
    found = list(iter_transactions(segments))  # verifies SE/GE/IEA arithmetic
    assert [t.control_number for _, _, t in found] == ["0009", "0010"]
    assert [seg[1] for seg in segments if seg[0] == "SE"] == ["3", "4"]
    assert segments[-2] == ["GE", "2", "7"]
    assert segments[-1] == ["IEA", "1", "000000042"]


def test_control_numbers_must_fit() -> None:
    with pytest.raises(X12WriteError):
        ControlNumbers(isa13=1_000_000_000, gs06=1, st02_start=1)
    with pytest.raises(X12WriteError, match="ISA06"):
        X12Writer().isa(
            sender_qualifier="ZZ", sender_id="X" * 16, receiver_qualifier="ZZ",
            receiver_id="R", created_at=datetime(2026, 1, 1), control_number=1, usage="T",
        )  # fmt: skip
