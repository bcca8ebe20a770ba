"""Acknowledgment reasons: 999 IK3/IK4 and 277CA STC codes turned into reasons a biller can
act on, and the work-queue category a rejection goes to. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.x12.ack import ClaimAck, SegmentError, SetAck, StatusInfo

# IK501 values that send the set's claims back to the biller (see the module docstring).
REJECTING_IK5 = frozenset({"R", "M", "W", "X", "E"})

_IK304 = {
    "1": "unrecognized segment ID",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
    "I4": "implementation 'not used' segment present",
    "I6": "implementation dependent segment missing",
    "I7": "implementation loop occurs under minimum times",
    "I8": "implementation segment below minimum use",
    "I9": "implementation dependent 'not used' segment present",
}
_IK403 = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used in implementation",
    "I9": "implementation dependent data element missing",
    "I10": "implementation 'not used' data element present",
    "I11": "implementation too few repetitions",
    "I12": "implementation pattern match failure",
    "I13": "implementation dependent 'not used' data element present",
}
_CATEGORY = {
    "A1": "received",
    "A2": "accepted into adjudication",
    "A3": "returned as unprocessable",
    "A4": "not found",
    "A6": "missing information",
    "A7": "invalid information",
    "A8": "relational field in error",
}
# Health care claim status codes seen on MTM rejections (STC01-2), in our words.
_STATUS = {
    "19": "entity acknowledges receipt of claim",
    "20": "accepted for processing",
    "21": "missing or invalid information",
    "33": "subscriber and subscriber id not found",
    "54": "duplicate of a previously processed claim",
    "97": "patient eligibility not found with entity",
    "109": "entity not eligible",
    "145": "entity's primary identifier",
    "164": "entity's contract/member number",
    "187": "date(s) of service",
    "454": "procedure code for services rendered",
    "496": "submitter not approved for electronic claim submissions",
    "562": "entity's National Provider Identifier (NPI)",
}
_ENTITY = {
    "85": "billing provider",
    "82": "rendering provider",
    "IL": "subscriber",
    "QC": "patient",
    "PR": "payer",
    "41": "submitter",
    "40": "receiver",
}
_WORK_CATEGORY = {
    "33": "eligibility_cob",
    "97": "eligibility_cob",
    "109": "eligibility_cob",
    "164": "eligibility_cob",
    "54": "duplicate",
    "145": "credentialing",
    "496": "credentialing",
    "562": "credentialing",
    "187": "coding",
    "454": "coding",
}


# ----------------------------------------------------------------------------- reasons


def reasons_999(set_ack: SetAck, errors: Sequence[SegmentError]) -> list[dict[str, Any]]:
    """One reason per IK3 (with its IK4 element errors); a bare IK5 code when none."""
    out: list[dict[str, Any]] = []
    for err in errors:
        elements = [
            {
                "position": el.position,
                "component": el.component,
                "repetition": el.repetition,
                "element_ref": el.element_ref,
                "code": el.code,
                "message": _IK403.get(el.code, f"element error {el.code}"),
            }
            for el in err.elements
        ]
        where = f"{err.segment_id} (segment {err.position} of set {set_ack.control_number}"
        where += f", loop {err.loop_id})" if err.loop_id else ")"
        detail = "; ".join(
            f"{err.segment_id}{el['position']:02d}: {el['message']}" for el in elements
        )
        out.append(
            {
                "source": "999",
                "code": f"IK3-{err.code}",
                "message": f"{where}: {_IK304.get(err.code, 'segment error ' + err.code)}"
                + (f" ({detail})" if detail else ""),
                "segment": err.segment_id,
                "position": err.position,
                "loop": err.loop_id,
                "elements": elements,
                "fix": "correct the claim data behind the named segment/element and resubmit",
            }
        )
    if not out:
        codes = ",".join(set_ack.codes) or "none"
        out.append(
            {
                "source": "999",
                "code": f"IK5-{set_ack.status}",
                "message": f"transaction set {set_ack.control_number} rejected "
                f"(IK5 {set_ack.status}, codes {codes})",
                "fix": "ask the clearinghouse for the detail, correct and resubmit",
            }
        )
    return out


def _status_text(category: str, status: str, entity: str) -> str:
    text_ = f"{category} {_CATEGORY.get(category, 'status')}"
    if status:
        text_ += f": {_STATUS.get(status, 'status code ' + status)}"
    if entity:
        text_ += f" ({_ENTITY.get(entity, 'entity ' + entity)})"
    return text_


def reasons_277(claim: ClaimAck) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    statuses: list[tuple[StatusInfo, str]] = [(s, "") for s in claim.statuses]
    for line in claim.lines:
        statuses.extend((s, line.procedure) for s in line.statuses)
    for info, procedure in statuses:
        for c in info.codes:
            if not c.is_rejection:
                continue
            reason: dict[str, Any] = {
                "source": "277CA",
                "code": f"{c.category}:{c.status}" + (f":{c.entity}" if c.entity else ""),
                "category": c.category,
                "status": c.status,
                "entity": c.entity,
                "message": _status_text(c.category, c.status, c.entity),
                "fix": "correct the named information and send the claim again (a new "
                "original: a rejected claim was never filed)",
            }
            if procedure:
                reason["procedure"] = procedure
            if info.message:
                reason["payer_message"] = info.message
            out.append(reason)
    return out


def _work_category(reasons: Sequence[dict[str, Any]]) -> str:
    for r in reasons:
        found = _WORK_CATEGORY.get(str(r.get("status", "")))
        if found:
            return found
        if r.get("entity") in ("IL", "QC"):
            return "eligibility_cob"
    first = reasons[0] if reasons else {}
    if first.get("category") in ("A6", "A7", "A8"):
        return "missing_information"
    if first.get("source") == "999":
        codes = {e["code"] for r in reasons for e in r.get("elements", [])}
        return "missing_information" if codes & {"1", "2", "I9"} else "other"
    return "other"
