"""Synthetic, deterministic demo data: two payers, their contracts, a roster, MTM sessions.

Everything here is made up (names from short lists, member ids from a counter); no real PHI.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.billing.domain.identifiers import npi_check_digit

FIRST = [
    "Ada",
    "Ben",
    "Cora",
    "Dev",
    "Eli",
    "Faye",
    "Gus",
    "Hana",
    "Ivo",
    "June",
    "Kai",
    "Lena",
    "Milo",
    "Nora",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
    "Uma",
    "Vic",
    "Wren",
    "Yara",
]
LAST = [
    "Abbott",
    "Baker",
    "Castro",
    "Dunn",
    "Ellis",
    "Fisher",
    "Grant",
    "Hayes",
    "Ingram",
    "Jensen",
    "Keller",
    "Lopez",
    "Moreno",
    "Nash",
    "Ortiz",
    "Price",
    "Reyes",
    "Stone",
    "Turner",
    "Vance",
]
CITIES = [("Albany", "NY", "12207"), ("Troy", "NY", "12180"), ("Schenectady", "NY", "12305")]
DIAGNOSES = [
    "E11.9",
    "I10",
    "E78.5",
    "J44.9",
    "F32.9",
    "N18.3",
    "I50.9",
    "M81.0",
    "E66.9",
    "J45.909",
]
DTPS = [
    "dosage_too_high",
    "nonadherence",
    "needs_additional_therapy",
    "adverse_drug_reaction",
    "unnecessary_therapy",
    "ineffective_drug",
    "dosage_too_low",
]
DRUGS = [
    "metformin",
    "lisinopril",
    "atorvastatin",
    "tiotropium",
    "sertraline",
    "furosemide",
    "alendronate",
    "albuterol",
    "insulin glargine",
    "amlodipine",
]


def pharmacy(rng: random.Random) -> dict[str, Any]:
    """A made-up pharmacy with a valid (check-digit) NPI, different for every demo tenant:
    an 835 without claims (PMPM capitation) finds its tenant by the payee NPI."""
    first9 = "1" + "".join(str(rng.randrange(10)) for _ in range(8))
    return {
        "npi": first9 + str(npi_check_digit(first9)),
        "tin": f"{rng.randrange(10, 99)}-{rng.randrange(1_000_000, 9_999_999)}",
        "name": "Demo Community Pharmacy",
        "address": {"line1": "100 Main St", "city": "Albany", "state": "NY", "zip": "12207-1234"},
        "taxonomy": "3336C0003X",
    }


PHARMACISTS = [
    {"npi": "1245319599", "first_name": "Rina", "last_name": "Okafor", "taxonomy": "183500000X"},
    {"npi": "1003000126", "first_name": "Tom", "last_name": "Alvarez", "taxonomy": "183500000X"},
]


def commercial_payer() -> dict[str, Any]:
    return {
        "name": "Acme Health Plan",
        "x12_payer_id": "ACME01",
        "receiver_id": "ACMECLEAR",
        "receiver_name": "ACME CLEARINGHOUSE",
        "claim_filing_indicator": "CI",
        "timely_filing_days": 180,
        "appeal_window_days": 90,
        "trading_partner_id": "ACMECLEAR",
        "transport": "directory",
    }


def medicaid_payer() -> dict[str, Any]:
    return {
        "name": "Statewide Medicaid MCO",
        "x12_payer_id": "SMMCO1",
        "receiver_id": "SMMCOEDI",
        "receiver_name": "SMMCO EDI",
        "claim_filing_indicator": "MC",
        "timely_filing_days": 95,
        "appeal_window_days": 60,
        "trading_partner_id": "SMMCOEDI",
        "transport": "directory",
    }


def _fees(start: date) -> list[dict[str, Any]]:
    rows = []
    for code, charge, allowed in (
        ("99605", "90.00", "72.00"),
        ("99606", "60.00", "48.00"),
        ("99607", "30.00", "24.00"),
    ):
        rows.append(
            {
                "code": code,
                "charge": charge,
                "allowed": allowed,
                "effective_from": start.isoformat(),
            }
        )
        rows.append(
            {
                "code": code,
                "modifier": "95",
                "charge": charge,
                "allowed": allowed,
                "effective_from": start.isoformat(),
            }
        )
        rows.append(
            {
                "code": code,
                "modifier": "93",
                "charge": charge,
                "allowed": allowed,
                "effective_from": start.isoformat(),
            }
        )
    return rows


TELEHEALTH = {
    "allowed_modalities": ["in_person", "video", "audio"],
    "rules": [
        {"modality": "in_person", "location": "pharmacy", "place_of_service": "01"},
        {"modality": "in_person", "location": "other", "place_of_service": "11"},
        {"modality": "video", "location": "home", "place_of_service": "10", "modifier": "95"},
        {"modality": "video", "location": "other", "place_of_service": "02", "modifier": "95"},
        {"modality": "video", "location": "pharmacy", "place_of_service": "02", "modifier": "95"},
        {"modality": "audio", "location": "home", "place_of_service": "10", "modifier": "93"},
        {"modality": "audio", "location": "other", "place_of_service": "02", "modifier": "93"},
        {"modality": "audio", "location": "pharmacy", "place_of_service": "02", "modifier": "93"},
    ],
}


def per_encounter_contract(payer_id: str, start: date) -> dict[str, Any]:
    return {
        "payer_id": payer_id,
        "name": "Acme MTM per-encounter",
        "effective_from": start.isoformat(),
        "terms": {
            "billing_model": "per_encounter",
            "time_rule": "midpoint",
            "max_addon_units": 4,
            "frequency_limits": [
                {"service_type": "CMR", "max_count": 1, "period": "plan_year"},
                {"service_type": "ANY", "max_count": 12, "period": "rolling_365"},
            ],
            "telehealth": TELEHEALTH,
            "fee_schedule": _fees(start),
            "required_documentation": ["medication_list", "care_plan"],
        },
    }


def pmpm_contract(payer_id: str, start: date) -> dict[str, Any]:
    return {
        "payer_id": payer_id,
        "name": "Medicaid MTM PMPM",
        "effective_from": start.isoformat(),
        "terms": {
            "billing_model": "pmpm",
            "time_rule": "midpoint",
            "telehealth": TELEHEALTH,
            "fee_schedule": _fees(start),
            "exclusions": ["PART_D_ELIGIBLE"],
            "pmpm": {
                "rates": [
                    {"tier": "standard", "rate": "12.50"},
                    {"tier": "complex", "rate": "25.00"},
                ],
                "default_tier": "standard",
                "proration": "fifteen_thirty",
                "activity": {"min_minutes": 15},
                "retro_window_months": 6,
                "payment_mode": "capitation",
            },
        },
    }


@dataclass(frozen=True)
class Member:
    ref: str
    payer: str  # "acme" | "mco"
    effective_from: date
    effective_to: date | None
    opt_out: date | None
    tier: str = "standard"
    part_d: bool = False


def members(rng: random.Random, n: int, period_start: date, period_end: date) -> list[Member]:
    out = []
    for i in range(n):
        payer = "acme" if i % 10 < 6 else "mco"
        start = date(period_start.year, 1, 1)
        end = None
        opt_out = None
        roll = rng.random()
        if roll < 0.10:  # terminates mid-period
            end = period_start + timedelta(
                days=rng.randint(20, (period_end - period_start).days - 10)
            )
        elif roll < 0.15:  # opted out
            opt_out = period_start + timedelta(days=rng.randint(10, 60))
        tier = "complex" if rng.random() < 0.2 else "standard"
        part_d = payer == "mco" and rng.random() < 0.05
        out.append(Member(f"M{100000 + i}", payer, start, end, opt_out, tier, part_d))
    return out


def roster_csv(rng: random.Random, ms: list[Member]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "member_id",
            "last_name",
            "first_name",
            "birth_date",
            "sex",
            "address1",
            "city",
            "state",
            "zip",
            "group",
            "effective_from",
            "effective_to",
            "rate_tier",
            "opt_out_date",
            "part_d_eligible",
        ]
    )
    for m in ms:
        city, state, zip_ = rng.choice(CITIES)
        birth = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 40))
        w.writerow(
            [
                m.ref,
                rng.choice(LAST),
                rng.choice(FIRST),
                birth.isoformat(),
                rng.choice("MF"),
                f"{rng.randint(1, 999)} Elm St",
                city,
                state,
                zip_,
                "GRP01",
                m.effective_from.isoformat(),
                m.effective_to.isoformat() if m.effective_to else "",
                m.tier,
                m.opt_out.isoformat() if m.opt_out else "",
                "Y" if m.part_d else "N",
            ]
        )
    return buf.getvalue()


def sessions(
    rng: random.Random,
    ms: list[Member],
    n: int,
    period_start: date,
    period_end: date,
    pharmacy: dict[str, Any],
) -> list[dict[str, Any]]:
    days = (period_end - period_start).days
    out = []
    for i in range(n):
        m = ms[rng.randrange(len(ms))]
        dos = period_start + timedelta(days=rng.randrange(days + 1))
        modality = rng.choices(["in_person", "video", "audio"], weights=[70, 20, 10])[0]
        location = "pharmacy" if modality == "in_person" else rng.choice(["home", "other"])
        minutes = max(3, int(rng.gauss(30, 12)))
        dx = rng.sample(DIAGNOSES, rng.randint(1, 4))
        elements = ["medication_list", "care_plan"] if rng.random() > 0.05 else ["medication_list"]
        out.append(
            {
                "external_id": f"DEMO-{i:05d}",
                "patient_ref": m.ref,
                "pharmacy": pharmacy,
                "pharmacist": PHARMACISTS[i % len(PHARMACISTS)],
                "date_of_service": dos.isoformat(),
                "modality": modality,
                "patient_location": location,
                "service_type": rng.choices(["CMR", "TMR", "follow_up"], weights=[25, 45, 30])[0],
                "consent": rng.random() > 0.03,
                "diagnoses": dx,
                "documented_minutes": minutes,
                "interventions": [
                    {
                        "type": "recommendation",
                        "dtp_category": rng.choice(DTPS),
                        "recommendation": "adjust therapy per plan",
                        "prescriber_contacted": rng.random() < 0.6,
                        "outcome": rng.choice(["accepted", "pending", "modified"]),
                        "drug": rng.choice(DRUGS),
                    }
                    for _ in range(rng.randint(0, 3))
                ],
                "documentation_elements": elements,
            }
        )
    return out


RATES = {"standard": 1250, "complex": 2500}


def capitation_plan(
    rng: random.Random, ms: list[Member], months: list[date]
) -> list[tuple[str, date, int]]:
    """What the PMPM payer 'pays' (member ref, month, cents): mostly right, with the kinds of
    mistakes reconciliation must find: missing, wrong tier, a duplicate, a member not on our
    roster, payments after an opt-out."""
    out: list[tuple[str, date, int]] = []
    for month in months:
        mid = month.replace(day=15)
        for m in ms:
            if m.payer != "mco":
                continue
            covered = m.effective_from <= mid and (m.effective_to is None or m.effective_to >= mid)
            if m.opt_out is not None and m.opt_out <= mid:
                covered = rng.random() < 0.5  # the payer still paying after the opt-out
            if not covered:
                continue
            roll = rng.random()
            if roll < 0.05:
                continue  # missing
            cents = RATES[m.tier]
            if roll < 0.10:
                cents = RATES["standard"] if m.tier == "complex" else RATES["complex"]  # wrong tier
            out.append((m.ref, month, cents))
            if roll > 0.99:
                out.append((m.ref, month, cents))  # duplicate
        out.append((f"M{900000 + month.month}", month, RATES["standard"]))  # not on our roster
    return out
