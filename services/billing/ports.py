"""What billing needs from coverage, as a port. Billing never reads coverage's tables: it
asks this Protocol. The in-process adapter (`services/billing/adapters/coverage_inprocess.py`)
calls coverage's service layer on the caller's connection, so eligibility, coding and the
claim are decided in one transaction; an HTTP adapter can replace it when deployed apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.coding_terms import CodingTerms


@dataclass(frozen=True, slots=True)
class PriorService:
    """One MTM service billing already knows about (for frequency limits / new vs established)."""

    dos: date
    service_type: str  # CMR | TMR | FOLLOW_UP
    tin: str
    code: str
    payer_id: str | None = None
    contract_id: str | None = None


@dataclass(frozen=True, slots=True)
class EligibilityReason:
    code: str  # NO_COVERAGE_ON_DOS, OUTSIDE_CONTRACT_WINDOW, OPTED_OUT, EXCLUDED_POPULATION, ...
    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class PayerInfo:
    payer_id: str  # internal id (uuid)
    name: str
    x12_payer_id: str  # 2010BB NM1*PR*...*PI*<id>
    receiver_id: str  # 1000B
    receiver_name: str
    claim_filing_indicator: str  # SBR09: MC, MB, CI, HM, ...
    timely_filing_days: int
    appeal_window_days: int
    transport: str  # directory | http
    trading_partner_id: str  # ISA08 receiver for this payer's batches


@dataclass(frozen=True, slots=True)
class PatientInfo:
    patient_id: str  # internal id (uuid)
    patient_ref: str  # the documentation system's reference
    first_name: str
    last_name: str
    birth_date: date
    sex: str  # M | F | U
    address1: str
    city: str
    state: str
    zip: str


@dataclass(frozen=True, slots=True)
class CoverageChoice:
    span_id: str
    member_id: str
    group_number: str | None
    relationship: str  # 18 = self
    priority: str  # primary | secondary | tertiary
    window_from: date
    window_to: date | None
    contract_id: str
    contract_version: int
    billing_model: str  # per_encounter | pmpm


@dataclass(frozen=True, slots=True)
class EligibilityEvidence:
    """The answer for one patient, date of service and service type, with its reasons."""

    eligible: bool
    checked_on: date
    reasons: tuple[EligibilityReason, ...]
    usage: tuple[str, ...]  # human text, e.g. "CMR 1 of 1 used in plan year 2026"
    patient: PatientInfo | None
    coverage: CoverageChoice | None
    payer: PayerInfo | None
    coding_terms: CodingTerms | None  # the contract version in force on the DOS, mapped


class CoveragePort(Protocol):
    async def evidence_for(
        self,
        conn: AsyncConnection,
        *,
        tenant_id: str,
        patient_ref: str,
        dos: date,
        service_type: str,
        modality: str | None,
        patient_location: str | None,
        prior_services: Sequence[PriorService],
    ) -> EligibilityEvidence: ...


class BillingHistoryPort(Protocol):
    """What coverage needs from billing: services already billed, for frequency limits."""

    async def prior_services(
        self, conn: AsyncConnection, *, tenant_id: str, patient_ref: str, before: date | None = None
    ) -> Sequence[PriorService]: ...
