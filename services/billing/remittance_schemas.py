"""msgspec Structs for the remittance, work-queue and report endpoints.

Money on the wire is a decimal string with two places ("120.00"); internally integer cents.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from msgspec import Meta, Struct

from services.billing.schemas import (
    ICD10,
    NPI,
    BillingProviderPatch,
    LinePatch,
    ProviderPatch,
)

Reason = Annotated[str, Meta(min_length=1, max_length=500)]
Note = Annotated[str, Meta(min_length=1, max_length=4000)]
Money = Annotated[str, Meta(pattern=r"^-?[0-9]{1,9}\.[0-9]{2}$", description="e.g. 120.00")]
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class QuarantineReasonRead(Struct):
    level: str
    code: str
    field: str
    message: str
    pcn: str | None = None
    line: int | None = None


class RemittanceRead(Struct):
    id: str | None
    status: str
    already_received: bool
    trace_number: str
    payer: str
    payment: str | None
    claims: int
    matched: int
    unmatched: int
    work_items: int
    reasons: list[QuarantineReasonRead]


class RemittanceSummary(Struct):
    id: str
    status: str
    trace_number: str
    payer: str
    payment: str | None
    claims: int
    matched: int
    source: str
    created_at: datetime


class RemittancePage(Struct):
    items: list[RemittanceSummary]


class AdjustmentRead(Struct):
    group: str
    carc: str
    amount: str
    kind: str
    line: int | None


class ClaimPaymentRead(Struct):
    id: str
    claim_id: str | None
    patient_control_number: str
    status_code: str
    outcome: str
    charge: str
    paid: str
    allowed: str
    patient_responsibility: str
    contractual: str
    denied: str
    payer_icn: str | None
    reverses_payment_id: str | None
    remit_date: date
    adjustments: list[AdjustmentRead]


class ProviderAdjustmentRead(Struct):
    reason_code: str
    reference: str | None
    amount: str
    provider_id: str
    fiscal_period: date | None


class RemittanceDetail(Struct):
    id: str
    status: str
    trace_number: str
    payer: str
    payment: str | None
    reasons: list[dict[str, Any]]
    payments: list[ClaimPaymentRead]
    provider_adjustments: list[ProviderAdjustmentRead]


class WorkItemStatusName(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    RESOLVED = "resolved"


class NoteRead(Struct):
    author: str
    body: str
    created_at: datetime


class WorkItemRead(Struct):
    id: str
    status: str
    category: str
    source: str
    summary: str
    claim_id: str | None
    batch_id: str | None
    payer_id: str | None
    recommended_action: str
    recommendation: str
    route: str
    amount: str
    timely_filing_deadline: date | None
    appeal_deadline: date | None
    no_appeal: bool
    priority_score: float
    past_due: bool
    assignee: str | None
    disposition: str | None
    reasons: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime
    claim_status: str | None = None
    notes: list[NoteRead] | None = None


class WorkItemPage(Struct):
    items: list[WorkItemRead]
    next_cursor: str | None


class WorkItemUpdate(Struct, frozen=True, forbid_unknown_fields=True):
    version: Annotated[int, Meta(ge=1)]
    status: WorkItemStatusName | None = None
    assignee: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    reason: Reason | None = None


class NoteCreate(Struct, frozen=True, forbid_unknown_fields=True):
    body: Note


class CorrectResubmit(Struct, frozen=True, forbid_unknown_fields=True):
    """Replacement claim (frequency 7): what to change; the rest is copied from the claim."""

    reason: Reason
    diagnoses: Annotated[list[ICD10], Meta(min_length=1, max_length=12)] | None = None
    member_id: Annotated[str, Meta(min_length=1, max_length=80)] | None = None
    rendering_provider: ProviderPatch | None = None
    billing_provider: BillingProviderPatch | None = None
    lines: Annotated[list[LinePatch], Meta(max_length=50)] | None = None


class SimpleAction(Struct, frozen=True, forbid_unknown_fields=True):
    reason: Reason


class WriteOffReason(StrEnum):
    CONTRACTUAL = "contractual"
    TIMELY_FILING = "timely_filing"
    NO_AUTHORIZATION = "no_authorization"
    OTHER = "other"


class WriteOffAction(Struct, frozen=True, forbid_unknown_fields=True):
    reason_code: WriteOffReason
    reason: Reason
    amount: Money | None = None


class BillOtherPayer(Struct, frozen=True, forbid_unknown_fields=True):
    """Bill another payer: a new original claim for the session, priced under the contract
    coverage finds for `payer_id` on the date of service; the denied claim is closed."""

    reason: Reason
    payer_id: Annotated[
        str, Meta(pattern=_UUID, description="the other payer's id in coverage (GET /v1/payers)")
    ]
    # Informational (kept from the close-only version): recorded in the audit trail.
    payer_name: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    payer_npi: NPI | None = None


class ActionResult(Struct):
    work_item: WorkItemRead
    claim_id: str | None
    claim_status: str | None
    new_claim_id: str | None = None
    new_claim_status: str | None = None
    appeal_id: str | None = None
    appeal_letter: str | None = None
    write_off_id: str | None = None


class KpiValue(Struct):
    numerator: str
    denominator: str
    value: str | None
    percent: str | None


class KpiRead(Struct):
    period_from: date
    period_to: date
    payer: str | None
    claims_submitted: int
    charges: str
    ar: str
    ar_over_90: str
    clean_claim_rate: KpiValue
    first_pass_yield: KpiValue
    denial_rate_count: KpiValue
    denial_rate_dollars: KpiValue
    days_in_ar: KpiValue
    ar_over_90_share: KpiValue
    net_collection_rate: KpiValue
    overturn_rate: KpiValue
    write_offs: dict[str, str]
    contractual_adjustments: str
    capitation_received: str
