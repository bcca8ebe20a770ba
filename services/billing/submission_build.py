"""From ready claim rows to 837P files: the claim snapshot -> ``Claim837`` mapping, batching
per tenant / trading partner / receiver / payer, and control numbers from PostgreSQL
sequences kept per (ISA06 sender, ISA08 receiver) pair.

Control numbers: each pair gets three sequences, ``billing.cn_<hash>_isa`` (ISA13),
``_gs`` (GS06) and ``_st`` (ST02, a contiguous block per file), created on first use under a
transaction advisory lock on the pair and listed in ``billing.control_number_partners``.
Sequences are not rolled back, so a failed transaction leaves a gap, never a duplicate. They
cycle after 999,999,999 (the 9-digit ISA13 limit).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.x12.envelope import ControlNumbers
from shared.x12.x837p import (
    BillingProvider,
    Claim837,
    Claim837Error,
    ClaimLine,
    Payer,
    Receiver,
    RenderingProvider,
    Subscriber,
)

__all__ = [
    "BatchKey",
    "ClaimRow",
    "SnapshotCache",
    "allocate_control_numbers",
    "batch_file_name",
    "batch_key",
    "claim_837",
]

_MAX_CN = 999_999_999
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True, slots=True)
class BatchKey:
    """Claims that may share one file: one tenant, ISA08 partner, 1000B receiver, payer."""

    tenant_id: str
    trading_partner_id: str
    receiver_id: str
    receiver_name: str
    payer_x12_id: str
    payer_name: str
    transport: str


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """What submission needs from a ``billing.claims`` row (locked by the caller)."""

    id: str
    tenant_id: str
    status: str
    version: int
    claim_version: int
    patient_control_number: str
    total_charge_cents: int
    timely_filing_deadline: date | None


def batch_key(tenant_id: str, payer: Mapping[str, Any] | None) -> BatchKey:
    if not payer:
        raise Claim837Error("the claim has no payer (no coverage was chosen)")
    try:
        return BatchKey(
            tenant_id=tenant_id,
            trading_partner_id=str(payer["trading_partner_id"]),
            receiver_id=str(payer["receiver_id"]),
            receiver_name=str(payer["receiver_name"]),
            payer_x12_id=str(payer["x12_payer_id"]),
            payer_name=str(payer["name"]),
            transport=str(payer.get("transport") or "directory"),
        )
    except KeyError as exc:
        raise Claim837Error(f"the payer snapshot lacks {exc.args[0]}") from None


def receiver_of(key: BatchKey) -> Receiver:
    return Receiver(key.receiver_name.upper(), key.receiver_id)


class SnapshotCache:
    """Snapshots repeat across claims (one pharmacy, one payer): build each value once so the
    builder's grouping by value also groups by identity."""

    def __init__(self) -> None:
        self.providers: dict[tuple[Any, ...], BillingProvider] = {}
        self.renderings: dict[tuple[Any, ...], RenderingProvider] = {}
        self.payers: dict[tuple[str, str], Payer] = {}


def _up(value: Any) -> str:
    return str(value or "").strip().upper()


def claim_837(
    row: Mapping[Any, Any],
    lines: Sequence[Mapping[Any, Any]],
    cache: SnapshotCache | None = None,
) -> Claim837:
    """The 837P view of a claim row and its lines; raises ``Claim837Error`` (with the
    reason a biller can act on) when the snapshot cannot make a valid claim."""
    cache = cache or SnapshotCache()
    pcn = row["patient_control_number"]
    payer = row["payer"] or {}
    sub = row["subscriber"]
    if not sub:
        raise Claim837Error(f"{pcn}: the claim has no subscriber (no coverage was chosen)")
    if str(sub.get("relationship") or "18") != "18":
        raise Claim837Error(
            f"{pcn}: the patient is not the subscriber (relationship "
            f"{sub.get('relationship')}); dependents (loop 2000C) are not supported yet"
        )
    bp = row["billing_provider"]
    addr = bp.get("address") or {}
    pkey = (bp.get("npi"), bp.get("tin"), bp.get("name"), bp.get("taxonomy"),
            addr.get("line1"), addr.get("city"), addr.get("state"), addr.get("zip"))  # fmt: skip
    provider = cache.providers.get(pkey)
    if provider is None:
        provider = cache.providers[pkey] = BillingProvider(
            name=_up(bp.get("name")),
            npi=str(bp.get("npi") or ""),
            tin=str(bp.get("tin") or "").replace("-", ""),
            address1=_up(addr.get("line1")),
            city=_up(addr.get("city")),
            state=_up(addr.get("state")),
            zip=str(addr.get("zip") or "").replace("-", ""),
            taxonomy=_up(bp.get("taxonomy")),
        )
    rp = row["rendering_provider"]
    rendering: RenderingProvider | None = None
    if rp:
        rkey = (rp.get("npi"), rp.get("last_name"), rp.get("first_name"), rp.get("taxonomy"))
        rendering = cache.renderings.get(rkey)
        if rendering is None:
            rendering = cache.renderings[rkey] = RenderingProvider(
                last=_up(rp.get("last_name")),
                first=_up(rp.get("first_name")),
                npi=str(rp.get("npi") or ""),
                taxonomy=_up(rp.get("taxonomy")),
            )
    payer_key = (str(payer.get("name") or ""), str(payer.get("x12_payer_id") or ""))
    payer_837 = cache.payers.get(payer_key)
    if payer_837 is None:
        payer_837 = cache.payers[payer_key] = Payer(payer_key[0].upper(), payer_key[1])
    birth = sub.get("birth_date")
    try:
        birth_date = date.fromisoformat(birth) if isinstance(birth, str) else birth
    except ValueError:
        birth_date = None
    if not isinstance(birth_date, date):
        raise Claim837Error(f"{pcn}: the subscriber's birth date is missing or invalid")
    subscriber = Subscriber(
        last=_up(sub.get("last_name")),
        first=_up(sub.get("first_name")),
        member_id=str(sub.get("member_id") or ""),
        address1=_up(sub.get("address1")),
        city=_up(sub.get("city")),
        state=_up(sub.get("state")),
        zip=str(sub.get("zip") or "").replace("-", ""),
        birth_date=birth_date,
        sex=_up(sub.get("sex")) or "U",
        group=str(sub.get("group_number") or "") or None,
        claim_filing_indicator=str(payer.get("claim_filing_indicator") or "CI"),
    )
    return Claim837(
        patient_control_number=pcn,
        total_cents=int(row["total_charge_cents"]),
        place_of_service=str(row["place_of_service"] or ""),
        frequency_code=str(row["frequency_code"]),
        diagnoses=tuple(str(d).replace(".", "").upper() for d in row["diagnoses"] or ()),
        lines=tuple(
            ClaimLine(
                code=str(ln["procedure_code"]),
                charge_cents=int(ln["charge_cents"]),
                units=int(ln["units"]),
                dos=ln["date_of_service"],
                modifiers=tuple(ln["modifiers"] or ()),
                diagnosis_pointers=tuple(ln["diagnosis_pointers"] or ()) or (1,),
            )
            for ln in lines
        ),
        billing_provider=provider,
        subscriber=subscriber,
        payer=payer_837,
        rendering=rendering,
        payer_icn=row["payer_icn"],
    )


def batch_file_name(key: BatchKey, isa13: int, batch_id: str) -> str:
    partner = _UNSAFE.sub("", key.trading_partner_id)[:15] or "TP"
    return f"837P-{partner}-{isa13:09d}-{batch_id.replace('-', '')[:8]}.x12"


def _prefix(sender_id: str, receiver_id: str) -> str:
    digest = hashlib.sha256(f"{sender_id}\x00{receiver_id}".encode()).hexdigest()[:24]
    return f"cn_{digest}"


async def allocate_control_numbers(
    conn: AsyncConnection, sender_id: str, receiver_id: str, sets: int
) -> ControlNumbers:
    """ISA13, GS06 and a block of ``sets`` consecutive ST02 values for one file to
    ``receiver_id``. Holds a transaction advisory lock on the pair until the caller commits
    (the ST02 block reservation needs it; creating the sequences too)."""
    if sets < 1:
        raise ValueError("a file has at least one transaction set")
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"x12-control:{sender_id}|{receiver_id}"},
    )
    prefix = (
        await conn.execute(
            text(
                "SELECT sequence_prefix FROM billing.control_number_partners "
                "WHERE sender_id = :s AND receiver_id = :r"
            ),
            {"s": sender_id, "r": receiver_id},
        )
    ).scalar_one_or_none()
    if prefix is None:
        prefix = _prefix(sender_id, receiver_id)
        for suffix in ("isa", "gs", "st"):
            await conn.execute(
                text(
                    f"CREATE SEQUENCE IF NOT EXISTS billing.{prefix}_{suffix} "
                    f"MINVALUE 1 MAXVALUE {_MAX_CN} CYCLE"
                )
            )
        await conn.execute(
            text(
                "INSERT INTO billing.control_number_partners (sender_id, receiver_id, "
                "sequence_prefix) VALUES (:s, :r, :p) ON CONFLICT DO NOTHING"
            ),
            {"s": sender_id, "r": receiver_id, "p": prefix},
        )
    row = (
        await conn.execute(
            text(
                f"SELECT nextval('billing.{prefix}_isa') AS isa, "
                f"nextval('billing.{prefix}_gs') AS gs, nextval('billing.{prefix}_st') AS st"
            )
        )
    ).one()
    st = int(row.st)
    if sets > 1:
        if st + sets - 1 > _MAX_CN:
            st = 1
        # Reserve st .. st+sets-1: safe because every allocation for the pair holds the lock.
        await conn.execute(text(f"SELECT setval('billing.{prefix}_st', :v)"), {"v": st + sets - 1})
    return ControlNumbers(isa13=int(row.isa), gs06=int(row.gs), st02_start=st)
