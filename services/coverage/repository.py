"""Statement-composing queries and row <-> domain mapping for the coverage schema.

Every query is scoped by tenant. The eligibility hot path and the bulk roster paths talk to
asyncpg directly (`driver`), inside the caller's transaction: SQLAlchemy's per-statement
overhead would be most of an eligibility check's budget.

This module is the façade callers import (`from services.coverage import repository as
repo`); the code lives in `repository_records` (records, row mapping, connection helpers),
`repository_contracts` (payers and contracts) and `repository_patients` (patients and spans).
"""

from __future__ import annotations

from services.coverage.repository_contracts import (
    StoredVersion,
    contract_versions_of,
    get_contract,
    get_payer,
    list_contracts,
    list_payers,
    versions_and_payers,
)
from services.coverage.repository_patients import (
    PatientBrief,
    get_patient,
    latest_span_version,
    list_patients,
    patient_spans_and_versions,
    patient_with_spans,
    patients_with_spans,
    span_versions_of,
)
from services.coverage.repository_records import (
    ContractMeta,
    PatientRecord,
    PayerRecord,
    SpanVersion,
    as_uuid,
    driver,
    lock,
    patient_from_row,
    payer_from_row,
    span_from_record,
)

__all__ = [
    "ContractMeta",
    "PatientBrief",
    "PatientRecord",
    "PayerRecord",
    "SpanVersion",
    "StoredVersion",
    "as_uuid",
    "contract_versions_of",
    "driver",
    "get_contract",
    "get_patient",
    "get_payer",
    "latest_span_version",
    "list_contracts",
    "list_patients",
    "list_payers",
    "lock",
    "patient_from_row",
    "patient_spans_and_versions",
    "patient_with_spans",
    "patients_with_spans",
    "payer_from_row",
    "span_from_record",
    "span_versions_of",
    "versions_and_payers",
]
