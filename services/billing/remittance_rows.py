"""COPY rows of an 835 posting (`remittance_post`): the column layouts of the ledger tables
(claim payments, their lines and adjustments, PLB entries), the row helpers, and the binary COPY
of one chunk of `CHUNK` claims."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

#: Claims per COPY batch: bounds the rows held in memory and sent at once.
CHUNK = 2000


_encode = msgspec.json.Encoder().encode


def _json_list(values: Sequence[str], _cache: dict[tuple[str, ...], str] = {}) -> str:  # noqa: B006
    """JSON text of a short list of codes (modifiers, remarks), memoised: mostly empty."""
    key = tuple(values)
    found = _cache.get(key)
    if found is None:
        found = _encode(list(key)).decode()
        if len(_cache) < 4096:
            _cache[key] = found
    return found


_PAY_COLS = {
    "id": "uuid",
    "tenant_id": "text",
    "remittance_file_id": "uuid",
    "seq": "int",
    "claim_id": "uuid",
    "patient_control_number": "text",
    "status_code": "text",
    "charge_cents": "bigint",
    "paid_cents": "bigint",
    "patient_resp_cents": "bigint",
    "allowed_cents": "bigint",
    "contractual_cents": "bigint",
    "denied_cents": "bigint",
    "payer_icn": "text",
    "reverses_payment_id": "uuid",
    "filing_indicator": "text",
    "outcome": "text",
    "remarks": "jsonb",
    "payer_code": "text",
    "remit_date": "date",
}


_LINE_COLS = {
    "claim_payment_id": "uuid",
    "seq": "smallint",
    "line_no": "smallint",
    "procedure_code": "text",
    "modifiers": "jsonb",
    "units": "int",
    "charge_cents": "bigint",
    "paid_cents": "bigint",
    "allowed_cents": "bigint",
    "patient_resp_cents": "bigint",
    "service_date": "date",
    "remarks": "jsonb",
}


_ADJ_COLS = {
    "claim_payment_id": "uuid",
    "line_seq": "smallint",
    "group_code": "text",
    "carc": "text",
    "amount_cents": "bigint",
    "quantity": "int",
    "kind": "text",
}


_PLB_COLS = {
    "tenant_id": "text",
    "remittance_file_id": "uuid",
    "provider_id": "text",
    "fiscal_period": "date",
    "reason_code": "text",
    "reference": "text",
    "amount_cents": "bigint",
    "payer_code": "text",
}


def _cols(types: dict[str, str]) -> tuple[str, str]:
    return ", ".join(types), ", ".join(f"{k} {v}" for k, v in types.items())


def _insert_sql(table: str, types: dict[str, str], param: str) -> str:
    names, defs = _cols(types)
    return (
        f"INSERT INTO {table} ({names}) "  # noqa: S608 - constants only
        f"SELECT {names} FROM jsonb_to_recordset({param}::jsonb) AS r({defs})"
    )


def _units(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


@dataclass(slots=True)
class _Rows:
    """COPY records for one chunk, in the column order of `_COPY_COLUMNS`."""

    payments: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    adjustments: list[tuple[Any, ...]] = field(default_factory=list)


_COPY_COLUMNS = {
    "claim_payments": list(_PAY_COLS),
    "line_payments": list(_LINE_COLS),
    "remit_adjustments": list(_ADJ_COLS),
}


async def _copy(
    drv: Any, table: str, records: list[tuple[Any, ...]], columns: list[str], schema: str
) -> None:
    if records:
        await drv.copy_records_to_table(table, schema_name=schema, columns=columns, records=records)


async def _write_rows(drv: Any, rows: _Rows) -> None:
    # Parents first: the lines' and adjustments' foreign keys are checked row by row.
    for table, records in (
        ("claim_payments", rows.payments),
        ("line_payments", rows.lines),
        ("remit_adjustments", rows.adjustments),
    ):
        await _copy(drv, table, records, _COPY_COLUMNS[table], "billing")


_INSERT_PLB = _insert_sql("billing.provider_adjustments", _PLB_COLS, "$1")
