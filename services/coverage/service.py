"""Coverage use cases: payers, contracts, patients and spans, eligibility.

Each use case is `async def verb(uow | conn, principal, command)`; writes go through the unit
of work and append an audit event in the same transaction. Roster imports live in
`rosters/importer.py`.

This module is the façade callers import; the use cases live by family in
`service_payers`, `service_contracts`, `service_patients` (patients and spans) and
`service_eligibility`.
"""

from __future__ import annotations

from services.coverage.service_contracts import (
    add_contract_version,
    create_contract,
    get_contract,
    list_contracts,
)
from services.coverage.service_eligibility import (
    Evaluation,
    PriorServiceSource,
    attribute_priors,
    check,
    evaluate,
    load_batch,
    service_type_of,
    to_prior,
)
from services.coverage.service_patients import (
    add_span,
    create_patient,
    get_patient,
    list_patients,
    spans_of,
)
from services.coverage.service_payers import create_payer, get_payer, list_payers, update_payer

__all__ = [
    "Evaluation",
    "PriorServiceSource",
    "add_contract_version",
    "add_span",
    "attribute_priors",
    "check",
    "create_contract",
    "create_patient",
    "create_payer",
    "evaluate",
    "get_contract",
    "get_patient",
    "get_payer",
    "list_contracts",
    "list_patients",
    "list_payers",
    "load_batch",
    "service_type_of",
    "spans_of",
    "to_prior",
    "update_payer",
]
