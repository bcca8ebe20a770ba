"""Denial / rejection work items: category, recommended action, deadlines and priority.

Deadlines
    * timely filing: date of service + the payer's limit (days, or calendar months such as
      Medicare's 12 months; a day that does not exist in the target month falls back to the
      month's last day).
    * appeal: denial (835) date + the payer's appeal window in days (Medicare redetermination
      120 days; other payers per contract).

Priority score (higher = work first)::

    score = (DOLLAR_WEIGHT * log10(1 + dollars) + URGENCY_WEIGHT * urgency(days)) * likelihood

    urgency(days) = URGENCY_HALF_LIFE / (URGENCY_HALF_LIFE + days)   for days >= 0
                  = urgency(NO_DEADLINE_DAYS)                          when no deadline is known
                  = urgency(NO_DEADLINE_DAYS)                          when the deadline passed
    likelihood    = 0.25 + 0.75 * overturn_rate   (1 when the overturn rate is unknown)

``days`` is the number of days until the nearest deadline still relevant to the item. Dollars
use a logarithm so a $5,000 denial outranks a $50 one without drowning every deadline (each
tenfold increase adds DOLLAR_WEIGHT points). Urgency is 1 on the deadline day, 1/2 at
``URGENCY_HALF_LIFE`` days out and falls smoothly after. The historical overturn rate for the
payer and the item's primary reason code (appeals of such items won / decided in the last 365
days, once at least 5 are decided; unknown, factor 1, before that; see
``services/billing/work_queue.py``) scales the whole score but never to zero, so unlikely
items still get ordered.

Past-deadline items: the deadline can no longer be met, so the item is not urgent in the
usual sense; its urgency drops to the "no deadline" floor (as if the deadline were
NO_DEADLINE_DAYS away), it keeps its dollar component, and ``Priority.past_due`` is set so the
queue can show it in its own lane (write off, or find proof of timely filing). An item due
today therefore always outranks the same item whose deadline has passed.

Properties (tested): for a fixed deadline more dollars never lower the score; for fixed dollars
a nearer (not yet passed) deadline never lowers the score.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType

from shared.codes import DefaultAction, DenialCategory
from shared.money import Cents

__all__ = [
    "DOLLAR_WEIGHT",
    "NO_DEADLINE_DAYS",
    "URGENCY_HALF_LIFE",
    "URGENCY_WEIGHT",
    "WORK_ITEM_TRANSITIONS",
    "Disposition",
    "InvalidWorkItemTransition",
    "Priority",
    "Recommendation",
    "Route",
    "WorkItemCategory",
    "WorkItemStatus",
    "add_months",
    "appeal_deadline",
    "category_for_denial",
    "days_until",
    "priority",
    "priority_score",
    "recommend",
    "timely_filing_deadline",
    "work_item_transition",
]

DOLLAR_WEIGHT = 10.0
URGENCY_WEIGHT = 40.0
URGENCY_HALF_LIFE = 14
NO_DEADLINE_DAYS = 180


class WorkItemCategory(StrEnum):
    ELIGIBILITY_COB = "eligibility_cob"
    AUTHORIZATION = "authorization"
    CODING = "coding"
    DOCUMENTATION = "documentation"
    MEDICAL_NECESSITY = "medical_necessity"
    DUPLICATE = "duplicate"
    TIMELY_FILING = "timely_filing"
    CREDENTIALING = "credentialing"
    BUNDLING = "bundling"
    MISSING_INFORMATION = "missing_information"
    PMPM_VARIANCE = "pmpm_variance"
    SUBMISSION_FAILURE = "submission_failure"
    OTHER = "other"


class Route(StrEnum):
    """Who works the item: administrative -> billing staff, technical -> coder, clinical ->
    pharmacist."""

    BILLING_STAFF = "billing_staff"
    CODER = "coder"
    PHARMACIST = "pharmacist"


class Disposition(StrEnum):
    """How every work item ends."""

    CORRECT_RESUBMIT = "correct_resubmit"  # frequency 7 replacement
    NEW_CLAIM = "new_claim"  # rejected/unprocessable claims: a fresh original
    APPEAL = "appeal"
    BILL_OTHER_PAYER = "bill_other_payer"
    BILL_PATIENT = "bill_patient"
    WRITE_OFF = "write_off"  # always with a reason code


class WorkItemStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    RESOLVED = "resolved"


WORK_ITEM_TRANSITIONS: Mapping[WorkItemStatus, frozenset[WorkItemStatus]] = MappingProxyType(
    {
        # open -> resolved covers items closed by events (a payment arrives, a claim is voided)
        WorkItemStatus.OPEN: frozenset({WorkItemStatus.IN_PROGRESS, WorkItemStatus.RESOLVED}),
        WorkItemStatus.IN_PROGRESS: frozenset(
            {WorkItemStatus.OPEN, WorkItemStatus.BLOCKED, WorkItemStatus.RESOLVED}
        ),
        WorkItemStatus.BLOCKED: frozenset(
            {WorkItemStatus.IN_PROGRESS, WorkItemStatus.OPEN, WorkItemStatus.RESOLVED}
        ),
        WorkItemStatus.RESOLVED: frozenset({WorkItemStatus.OPEN}),  # reopen
    }
)


class InvalidWorkItemTransition(ValueError):
    def __init__(self, current: WorkItemStatus, target: WorkItemStatus) -> None:
        self.current = current
        self.target = target
        self.allowed = WORK_ITEM_TRANSITIONS[current]
        super().__init__(
            f"work item cannot go from {current} to {target}; "
            f"allowed: {', '.join(sorted(self.allowed))}"
        )


def work_item_transition(current: WorkItemStatus, target: WorkItemStatus) -> WorkItemStatus:
    if target not in WORK_ITEM_TRANSITIONS[current]:
        raise InvalidWorkItemTransition(current, target)
    return target


def category_for_denial(category: DenialCategory) -> WorkItemCategory:
    """Map a code-table category to a queue category (contractual/PR are not queue work)."""
    if category in {DenialCategory.CONTRACTUAL, DenialCategory.PATIENT_RESPONSIBILITY}:
        return WorkItemCategory.OTHER
    return WorkItemCategory(category.value)


_ROUTES: Mapping[WorkItemCategory, Route] = MappingProxyType(
    {
        WorkItemCategory.CODING: Route.CODER,
        WorkItemCategory.BUNDLING: Route.CODER,
        WorkItemCategory.MEDICAL_NECESSITY: Route.PHARMACIST,
        WorkItemCategory.DOCUMENTATION: Route.PHARMACIST,
    }
)

_ACTION_TEXT: Mapping[DefaultAction, str] = MappingProxyType(
    {
        DefaultAction.CORRECT_RESUBMIT: (
            "Correct the claim and send a replacement (frequency 7 with the payer ICN)."
        ),
        DefaultAction.APPEAL: "Appeal with supporting records before the appeal deadline.",
        DefaultAction.BILL_OTHER_PAYER: (
            "Verify coverage for the date of service and bill the responsible payer."
        ),
        DefaultAction.BILL_PATIENT: (
            "Bill the patient if the plan and contract allow it; otherwise write off."
        ),
        DefaultAction.WRITE_OFF: "Write off with the reason code.",
        DefaultAction.NO_ACTION: "No action needed beyond posting.",
        DefaultAction.CHECK_STATUS: (
            "Check claim status with the payer (276/277) before doing anything else."
        ),
        DefaultAction.SEND_DOCUMENTATION: (
            "Send the requested documentation (attachment or records) to the payer."
        ),
    }
)

_CATEGORY_TEXT: Mapping[WorkItemCategory, str] = MappingProxyType(
    {
        WorkItemCategory.ELIGIBILITY_COB: "Re-check eligibility and coordination of benefits.",
        WorkItemCategory.AUTHORIZATION: "Look for a prior authorization or request a retro one.",
        WorkItemCategory.CODING: "Review codes, modifiers, units and diagnosis pointers.",
        WorkItemCategory.DOCUMENTATION: "Pull the session documentation and time record.",
        WorkItemCategory.MEDICAL_NECESSITY: "Pharmacist to review the clinical justification.",
        WorkItemCategory.DUPLICATE: "Do not resend; find the original claim and its status.",
        WorkItemCategory.TIMELY_FILING: "Look for 999/277CA acceptance as proof of timely filing.",
        WorkItemCategory.CREDENTIALING: "Check NPI, taxonomy and payer enrollment.",
        WorkItemCategory.BUNDLING: "Check which service the payment was bundled into.",
        WorkItemCategory.MISSING_INFORMATION: "Supply what the remark codes say is missing.",
        WorkItemCategory.PMPM_VARIANCE: "Reconcile the member-month against the roster.",
        WorkItemCategory.SUBMISSION_FAILURE: (
            "The claim was rejected, not filed: fix it and send a new original claim."
        ),
        WorkItemCategory.OTHER: "Review the remittance and decide.",
    }
)


@dataclass(frozen=True, slots=True)
class Recommendation:
    action: DefaultAction
    route: Route
    text: str


def recommend(
    category: WorkItemCategory,
    action: DefaultAction,
    *,
    appeal_deadline_passed: bool = False,
    no_appeal: bool = False,
) -> Recommendation:
    """Action and routing for an item; an appeal that is barred or too late becomes a write-off
    (timely filing) or a correction."""
    if action is DefaultAction.APPEAL and (appeal_deadline_passed or no_appeal):
        action = (
            DefaultAction.WRITE_OFF
            if category is WorkItemCategory.TIMELY_FILING
            else DefaultAction.CORRECT_RESUBMIT
        )
    route = _ROUTES.get(category, Route.BILLING_STAFF)
    text = f"{_CATEGORY_TEXT[category]} {_ACTION_TEXT[action]}"
    if category is WorkItemCategory.SUBMISSION_FAILURE:
        text = _CATEGORY_TEXT[category]
    return Recommendation(action=action, route=route, text=text)


def add_months(start: date, months: int) -> date:
    """``start`` moved by whole calendar months, clamped to the month's last day."""
    month_index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last_day))


def timely_filing_deadline(
    date_of_service: date, *, days: int | None = None, months: int | None = None
) -> date:
    """Last day a claim may be filed: DOS + the payer limit in days *or* months (not both)."""
    if days is not None and months is None:
        if days < 0:
            raise ValueError("filing limit must not be negative")
        return date_of_service + timedelta(days=days)
    if months is not None and days is None:
        if months < 0:
            raise ValueError("filing limit must not be negative")
        return add_months(date_of_service, months)
    raise ValueError("give the filing limit in days or in months")


def appeal_deadline(denial_date: date, window_days: int) -> date:
    """Last day to file an appeal: the denial (remittance) date + the payer's window."""
    if window_days < 0:
        raise ValueError("appeal window must not be negative")
    return denial_date + timedelta(days=window_days)


def days_until(deadline: date, today: date) -> int:
    """Days left (0 on the deadline day, negative once it has passed)."""
    return (deadline - today).days


def _urgency(days: int | None) -> float:
    effective = NO_DEADLINE_DAYS if days is None or days < 0 else days
    return URGENCY_HALF_LIFE / (URGENCY_HALF_LIFE + effective)


def _likelihood(overturn_rate: Fraction | float | None) -> float:
    if overturn_rate is None:
        return 1.0
    rate = float(overturn_rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("overturn rate must be between 0 and 1")
    return 0.25 + 0.75 * rate


def priority_score(
    amount_cents: Cents,
    days_to_deadline: int | None,
    overturn_rate: Fraction | float | None = None,
) -> float:
    """The documented score for one item (see the module docstring)."""
    dollars = max(amount_cents, 0) / 100
    base = DOLLAR_WEIGHT * math.log10(1 + dollars) + URGENCY_WEIGHT * _urgency(days_to_deadline)
    return base * _likelihood(overturn_rate)


@dataclass(frozen=True, slots=True)
class Priority:
    score: float
    nearest_deadline: date | None
    days_left: int | None
    past_due: bool


def priority(
    amount_cents: Cents,
    deadlines: Iterable[date | None],
    today: date,
    overturn_rate: Fraction | float | None = None,
) -> Priority:
    """Score an item against its nearest deadline still ahead (or the latest passed one)."""
    known = sorted(d for d in deadlines if d is not None)
    upcoming = [d for d in known if d >= today]
    nearest = upcoming[0] if upcoming else (known[-1] if known else None)
    days_left = days_until(nearest, today) if nearest is not None else None
    return Priority(
        score=priority_score(amount_cents, days_left, overturn_rate),
        nearest_deadline=nearest,
        days_left=days_left,
        past_due=days_left is not None and days_left < 0,
    )
