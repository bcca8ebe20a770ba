"""Billing's in-process adapters: CoveragePort evidence with mapped CodingTerms, and the
session history port."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.billing.adapters.coverage_inprocess import EvidenceQuery, InProcessCoverage
from services.billing.adapters.history_inprocess import SessionHistory
from services.billing.domain.coding_terms import Modality, PatientLocation, TimeRule
from services.billing.ports import PriorService
from shared.uow import SharedConnectionDatabase
from tests.fixtures.sessions import session_payload
from tests.integration.conftest import Keys
from tests.integration.coverage.helpers import add_span, make_contract, make_patient, make_payer


async def test_evidence_maps_patient_payer_coverage_and_coding_terms(
    client: Any, keys: Keys, db: SharedConnectionDatabase, tenant: str
) -> None:
    payer = await make_payer(client, keys)
    contract = await make_contract(client, keys, payer["id"], min_base_minutes=0)
    patient = await make_patient(client, keys, "P-9")
    span = await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id="MEM9",
        effective_from="2025-01-01",
        group="G1",
    )
    port = InProcessCoverage()
    async with db.transaction() as (conn, _):
        ev = await port.evidence_for(
            conn,
            tenant_id=tenant,
            patient_ref="P-9",
            dos=date(2025, 5, 1),
            service_type="CMR",
            modality="video",
            patient_location="home",
            prior_services=(),
        )
        limited = await port.evidence_for(
            conn,
            tenant_id=tenant,
            patient_ref="P-9",
            dos=date(2025, 5, 1),
            service_type="CMR",
            modality=None,
            patient_location=None,
            prior_services=(PriorService(date(2025, 2, 1), "CMR", "12-3456789", "99605"),),
        )
        batch = await port.evidence_for_many(
            conn,
            tenant_id=tenant,
            queries=[
                EvidenceQuery("P-9", date(2025, 5, 1), "TMR"),
                EvidenceQuery("nobody", date(2025, 5, 1), "CMR"),
            ],
        )
        other = await port.evidence_for(
            conn,
            tenant_id=tenant + "-other",
            patient_ref="P-9",
            dos=date(2025, 5, 1),
            service_type="CMR",
            modality=None,
            patient_location=None,
            prior_services=(),
        )
    assert ev.eligible, ev.reasons
    assert ev.patient is not None
    assert ev.patient.last_name == "Lovelace"
    assert ev.patient.zip == "62701"
    assert ev.payer is not None
    assert ev.payer.x12_payer_id == "SKMD0"
    assert ev.payer.claim_filing_indicator == "MC"
    assert ev.coverage is not None
    assert (ev.coverage.member_id, ev.coverage.group_number) == ("MEM9", "G1")
    assert ev.coverage.span_id == span["span_id"]
    assert ev.coverage.contract_version == 1
    assert ev.usage == ("CMR 1 of 1 used in plan year 2025",)
    terms = ev.coding_terms
    assert terms is not None
    assert terms.time_rule is TimeRule.MIDPOINT
    assert terms.rule_version == f"{contract['id']}@v1"
    assert terms.max_addon_units == 3
    assert terms.min_base_minutes == 1
    assert terms.required_documentation == frozenset({"care_plan"})
    fee = terms.fee_for("99605", None, date(2025, 5, 1))
    assert fee is not None
    assert (fee.charge_cents, fee.allowed_cents) == (7500, 6000)
    place = terms.telehealth.place_for(Modality.VIDEO, PatientLocation.HOME)
    assert place is not None
    assert (place.place_of_service, place.modifier) == ("10", "95")
    assert terms.telehealth.allowed_modalities == frozenset({Modality.IN_PERSON, Modality.VIDEO})
    assert not limited.eligible
    assert [r.code for r in limited.reasons] == ["FREQUENCY_LIMIT_REACHED"]
    assert batch[0].eligible
    assert batch[0].coding_terms is terms
    assert not batch[1].eligible
    assert batch[1].patient is None
    assert not other.eligible
    assert other.patient is None


async def test_session_history_reads_billing_sessions(
    client: Any, keys: Keys, db: SharedConnectionDatabase, tenant: str
) -> None:
    body = session_payload("H-1", date_of_service=date(2025, 3, 1))
    body["patient_ref"] = "P-H"
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 201, resp.text
    async with db.transaction() as (conn, _):
        found = await SessionHistory().prior_services(conn, tenant_id=tenant, patient_ref="P-H")
        none = await SessionHistory().prior_services(
            conn, tenant_id=tenant, patient_ref="P-H", before=date(2025, 3, 1)
        )
    assert [(p.dos, p.service_type) for p in found] == [
        (date(2025, 3, 1), body["service_type"].upper())
    ]
    assert none == []
