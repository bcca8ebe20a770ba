"""Pure parts of remittance: quarantine reasons with field paths, work-item dedupe keys and
the priority formula the daily refresh re-implements in SQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from services.billing.domain.work_items import priority
from services.billing.remittance import quarantine_reasons
from services.billing.remittance_codes import code_table_rows
from services.billing.work_queue import dedupe_key
from shared.x12.x835 import parse_835

SAMPLE = Path("/work/shared/samples/835_one_claim.x12")
TEXT = (
    SAMPLE.read_text()
    if SAMPLE.exists()
    else (Path(__file__).parent / "x12" / "835_one_claim.x12").read_text()
)


def test_the_sample_balances() -> None:
    assert quarantine_reasons(parse_835(TEXT)) == []


def test_each_failure_is_a_reason_with_its_place() -> None:
    bad = TEXT.replace("SVC*HC:99605*100.00*80.00", "SVC*HC:99605*100.00*81.00")
    reasons = quarantine_reasons(parse_835(bad))
    levels = [r["level"] for r in reasons]
    assert levels == ["line", "claim"] or set(levels) >= {"line"}
    line = reasons[0]
    assert line["field"] == "transactions[0].claims[0].lines[0]"
    assert line["pcn"] == "PATACCT001"
    assert line["line"] == 1
    assert line["code"] == "UNBALANCED_LINE"
    file_bad = TEXT.replace("BPR*I*120.00", "BPR*I*121.00")
    assert [r["level"] for r in quarantine_reasons(parse_835(file_bad))] == ["file"]


def test_dedupe_key_names_source_claim_batch_and_primary_code() -> None:
    assert dedupe_key("999", "c1", None, ({"code": "IK5-R"}, {"code": "x"})) == "999|c1||IK5-R"
    assert dedupe_key("submission", None, "b1", ()) == "submission||b1|"


def test_priority_grows_with_dollars_and_deadline_proximity() -> None:
    today = date(2026, 11, 26)
    near = priority(10000, [date(2026, 11, 30)], today).score
    far = priority(10000, [date(2027, 3, 30)], today).score
    big = priority(500000, [date(2027, 3, 30)], today).score
    assert near > far
    assert big > far
    assert priority(10000, [date(2026, 11, 1)], today).past_due


def test_code_tables_are_versioned_rows() -> None:
    carcs, rarcs = code_table_rows()
    codes = {r["code"] for r in carcs}
    assert {"45", "50", "16", "29", "197"} <= codes
    assert all(r["table_version"] and r["start_date"] for r in carcs + rarcs)
    assert any(r["no_appeal"] for r in rarcs if r["code"] == "MA130")
