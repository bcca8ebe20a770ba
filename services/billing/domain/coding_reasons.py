"""Reason catalogue shared by session coding: fixed reasons and coverage's eligibility reasons.

Each coverage reason code maps to one billing reason with a fix a biller can act on; codes
billing does not know are held for a person to look at rather than guessed at.
"""

from __future__ import annotations

from services.billing.domain.coding_terms import CodingStatus, Reason, ReasonCode

_NOT = CodingStatus.NOT_BILLABLE
_HELD = CodingStatus.HELD

# Coverage reports why the member is not eligible; each becomes a billing reason with a fix.
_ELIGIBILITY_REASONS: dict[str, Reason] = {
    r.code.value: r
    for r in (
        Reason(
            ReasonCode.FREQUENCY_LIMIT_REACHED,
            "the member has reached the contract's visit frequency limit",
            "schedule the visit after the frequency window resets, or obtain a limit "
            "exception from the payer",
            _NOT,
        ),
        Reason(
            ReasonCode.EXCLUDED_POPULATION,
            "the member belongs to a population the program excludes (e.g. Part D eligible)",
            "bill the program that covers this member (e.g. the Part D plan's MTM vendor)",
            _NOT,
        ),
        Reason(
            ReasonCode.NO_COVERAGE_ON_DOS,
            "the member had no coverage under this contract on the date of service",
            "verify eligibility for the date of service and bill the payer covering that date",
            _NOT,
        ),
        Reason(
            ReasonCode.OPTED_OUT,
            "the member opted out of the program",
            "do not bill this program; record a new enrollment first if the member re-enrolls",
            _NOT,
        ),
        Reason(
            ReasonCode.OUTSIDE_CONTRACT_WINDOW,
            "the date of service is outside the contract's effective window",
            "bill under the contract in force on the date of service",
            _NOT,
        ),
    )
}
# A contract that pays per member per month does not pay per encounter: the session is the
# month's documented activity (PMPM runs count it; a monthly_claim contract bills the month).
PMPM_CONTRACT = Reason(
    ReasonCode.PMPM_CONTRACT,
    "the member's contract pays per member per month, not per encounter: the session counts "
    "toward the month's documented activity",
    "nothing to bill for the session: the month is reconciled (capitation) or billed with the "
    "monthly codes when the PMPM month is closed",
    _NOT,
)
NO_CONSENT = Reason(
    ReasonCode.NO_CONSENT,
    "patient consent is not recorded for this session",
    "record patient consent",
    _HELD,
)
NO_DIAGNOSIS = Reason(
    ReasonCode.NO_DIAGNOSIS,
    "no ICD-10-CM diagnosis is documented",
    "add at least one ICD-10-CM diagnosis supporting the service",
    _HELD,
)


def eligibility_reason(raw: str) -> Reason:
    known = _ELIGIBILITY_REASONS.get(raw)
    if known is not None:
        return known
    # An unknown coverage reason may or may not block payment; a person has to look.
    return Reason(
        ReasonCode.UNRECOGNIZED_ELIGIBILITY_REASON,
        f"the coverage check reported {raw!r}, which billing has no rule for",
        f"review the coverage result and map {raw!r} to a billing rule",
        _HELD,
    )
