"""Claim lifecycle: an explicit state machine with one named event per move.

Diagram (``-event->``; every edge is listed in ``_EDGES`` below)::

    draft --scrub_passed--> ready --submit--> submitted
      |  \\--hold--> on_hold --scrub_passed--> ready        (and on_hold --return_to_draft--> draft)
      \\--mark_not_billable--> not_billable --reopen--> draft   (coverage found later)

    submitted --ack_accepted--> accepted          (999 / 277CA A2 from clearinghouse or payer)
    submitted|accepted --ack_rejected--> rejected (999 R, 277CA A3/A4/A6/A7/A8, even after A2)
    submitted|accepted --remit_paid|remit_partial|remit_denied--> paid|partially_paid|denied
                                                  (an 835 may arrive before any 277CA)

    rejected --correct--> ready        (never filed: fix and send again as an original, no appeal)
    rejected --hold--> on_hold | --mark_not_billable--> not_billable | --write_off--> written_off

    denied --appeal--> appealed --remit_*--> paid | partially_paid | denied (upheld; may appeal again)
    denied|partially_paid|paid --replace--> replaced   (frequency 7 sent; a new claim version)
    denied|partially_paid|paid --void--> voided        (frequency 8 sent)
    denied|partially_paid|appealed --write_off--> written_off
    paid|partially_paid|denied --close | bill_patient | bill_other_payer--> closed
    paid|partially_paid|denied|closed --remit_*--> ...   (payer re-adjudication, CLP02=22 + correction)

    closed --replace|void|appeal--> replaced | voided | appealed   (correction found after closing)
    written_off --reopen--> ready (rejected claim still in time) | --appeal--> appealed (proof of
    timely filing) | --replace--> replaced

Notes from the domain brief:
* A rejected claim was never filed: it cannot be appealed, replaced or voided, and the filing
  clock keeps running; it goes back to ``ready`` once corrected.
* ``replaced`` and ``voided`` are absorbing for this claim version: the frequency 7/8 claim is a
  new claim record carrying the payer ICN.
* "Bill another payer" and "bill the patient" close this claim; the new payer's claim (or the
  patient statement) is a separate record.
* ``closed``, ``written_off`` and ``not_billable`` are terminal for day-to-day work but a biller
  can reopen them through the explicit events above (every move needs a reason for the audit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "OPEN_AR_STATUSES",
    "TERMINAL_STATUSES",
    "TRANSITIONS",
    "ClaimEvent",
    "ClaimStatus",
    "InvalidTransition",
    "Transition",
    "allowed_events",
    "fire",
    "is_absorbing",
    "is_open_ar",
    "is_terminal",
    "transition",
]


class ClaimStatus(StrEnum):
    DRAFT = "draft"
    ON_HOLD = "on_hold"
    NOT_BILLABLE = "not_billable"
    READY = "ready"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    APPEALED = "appealed"
    REPLACED = "replaced"
    VOIDED = "voided"
    WRITTEN_OFF = "written_off"
    CLOSED = "closed"


class ClaimEvent(StrEnum):
    HOLD = "hold"
    MARK_NOT_BILLABLE = "mark_not_billable"
    SCRUB_PASSED = "scrub_passed"
    RETURN_TO_DRAFT = "return_to_draft"
    SUBMIT = "submit"
    ACK_ACCEPTED = "ack_accepted"
    ACK_REJECTED = "ack_rejected"
    REMIT_PAID = "remit_paid"
    REMIT_PARTIAL = "remit_partial"
    REMIT_DENIED = "remit_denied"
    CORRECT = "correct"
    APPEAL = "appeal"
    REPLACE = "replace"
    VOID = "void"
    WRITE_OFF = "write_off"
    CLOSE = "close"
    BILL_PATIENT = "bill_patient"
    BILL_OTHER_PAYER = "bill_other_payer"
    REOPEN = "reopen"


_S = ClaimStatus
_Ev = ClaimEvent

_REMIT: tuple[tuple[ClaimStatus, tuple[ClaimEvent, ...]], ...] = (
    (_S.PAID, (_Ev.REMIT_PAID,)),
    (_S.PARTIALLY_PAID, (_Ev.REMIT_PARTIAL,)),
    (_S.DENIED, (_Ev.REMIT_DENIED,)),
)


def _remit_edges(
    source: ClaimStatus,
) -> list[tuple[ClaimStatus, ClaimStatus, tuple[ClaimEvent, ...]]]:
    return [(source, target, events) for target, events in _REMIT if target != source]


_CLOSE_EVENTS = (_Ev.CLOSE, _Ev.BILL_PATIENT, _Ev.BILL_OTHER_PAYER)

# (source, target, events); the first event is the default name for the edge.
_EDGES: tuple[tuple[ClaimStatus, ClaimStatus, tuple[ClaimEvent, ...]], ...] = (
    (_S.DRAFT, _S.READY, (_Ev.SCRUB_PASSED,)),
    (_S.DRAFT, _S.ON_HOLD, (_Ev.HOLD,)),
    (_S.DRAFT, _S.NOT_BILLABLE, (_Ev.MARK_NOT_BILLABLE,)),
    (_S.ON_HOLD, _S.READY, (_Ev.SCRUB_PASSED,)),
    (_S.ON_HOLD, _S.DRAFT, (_Ev.RETURN_TO_DRAFT,)),
    (_S.ON_HOLD, _S.NOT_BILLABLE, (_Ev.MARK_NOT_BILLABLE,)),
    (_S.NOT_BILLABLE, _S.DRAFT, (_Ev.REOPEN,)),
    (_S.READY, _S.SUBMITTED, (_Ev.SUBMIT,)),
    (_S.READY, _S.ON_HOLD, (_Ev.HOLD,)),
    (_S.READY, _S.DRAFT, (_Ev.RETURN_TO_DRAFT,)),
    (_S.READY, _S.NOT_BILLABLE, (_Ev.MARK_NOT_BILLABLE,)),
    (_S.SUBMITTED, _S.ACCEPTED, (_Ev.ACK_ACCEPTED,)),
    (_S.SUBMITTED, _S.REJECTED, (_Ev.ACK_REJECTED,)),
    *_remit_edges(_S.SUBMITTED),
    (_S.ACCEPTED, _S.REJECTED, (_Ev.ACK_REJECTED,)),
    *_remit_edges(_S.ACCEPTED),
    (_S.REJECTED, _S.READY, (_Ev.CORRECT,)),
    (_S.REJECTED, _S.ON_HOLD, (_Ev.HOLD,)),
    (_S.REJECTED, _S.NOT_BILLABLE, (_Ev.MARK_NOT_BILLABLE,)),
    (_S.REJECTED, _S.WRITTEN_OFF, (_Ev.WRITE_OFF,)),
    *_remit_edges(_S.PAID),
    (_S.PAID, _S.REPLACED, (_Ev.REPLACE,)),
    (_S.PAID, _S.VOIDED, (_Ev.VOID,)),
    (_S.PAID, _S.CLOSED, _CLOSE_EVENTS),
    *_remit_edges(_S.PARTIALLY_PAID),
    (_S.PARTIALLY_PAID, _S.APPEALED, (_Ev.APPEAL,)),
    (_S.PARTIALLY_PAID, _S.REPLACED, (_Ev.REPLACE,)),
    (_S.PARTIALLY_PAID, _S.VOIDED, (_Ev.VOID,)),
    (_S.PARTIALLY_PAID, _S.WRITTEN_OFF, (_Ev.WRITE_OFF,)),
    (_S.PARTIALLY_PAID, _S.CLOSED, _CLOSE_EVENTS),
    *_remit_edges(_S.DENIED),
    (_S.DENIED, _S.APPEALED, (_Ev.APPEAL,)),
    (_S.DENIED, _S.REPLACED, (_Ev.REPLACE,)),
    (_S.DENIED, _S.VOIDED, (_Ev.VOID,)),
    (_S.DENIED, _S.WRITTEN_OFF, (_Ev.WRITE_OFF,)),
    (_S.DENIED, _S.CLOSED, _CLOSE_EVENTS),
    *[(_S.APPEALED, target, events) for target, events in _REMIT],
    (_S.APPEALED, _S.WRITTEN_OFF, (_Ev.WRITE_OFF,)),
    *[(_S.CLOSED, target, events) for target, events in _REMIT],
    (_S.CLOSED, _S.REPLACED, (_Ev.REPLACE,)),
    (_S.CLOSED, _S.VOIDED, (_Ev.VOID,)),
    (_S.CLOSED, _S.APPEALED, (_Ev.APPEAL,)),
    (_S.WRITTEN_OFF, _S.READY, (_Ev.REOPEN,)),
    (_S.WRITTEN_OFF, _S.APPEALED, (_Ev.APPEAL,)),
    (_S.WRITTEN_OFF, _S.REPLACED, (_Ev.REPLACE,)),
)


def _build() -> tuple[
    Mapping[ClaimStatus, frozenset[ClaimStatus]],
    Mapping[tuple[ClaimStatus, ClaimStatus], tuple[ClaimEvent, ...]],
]:
    targets: dict[ClaimStatus, set[ClaimStatus]] = {status: set() for status in ClaimStatus}
    events: dict[tuple[ClaimStatus, ClaimStatus], tuple[ClaimEvent, ...]] = {}
    for source, target, names in _EDGES:
        if (source, target) in events:
            raise AssertionError(f"duplicate edge {source} -> {target}")
        targets[source].add(target)
        events[(source, target)] = names
    frozen = {status: frozenset(found) for status, found in targets.items()}
    return MappingProxyType(frozen), MappingProxyType(events)


TRANSITIONS, _EDGE_EVENTS = _build()
"""Allowed targets for every status (absorbing statuses map to an empty set)."""

TERMINAL_STATUSES: frozenset[ClaimStatus] = frozenset(
    {_S.NOT_BILLABLE, _S.REPLACED, _S.VOIDED, _S.WRITTEN_OFF, _S.CLOSED}
)
"""No further work is expected; only an explicit biller event (reopen, replace, ...) leaves."""

OPEN_AR_STATUSES: frozenset[ClaimStatus] = frozenset(
    {_S.SUBMITTED, _S.ACCEPTED, _S.REJECTED, _S.DENIED, _S.PARTIALLY_PAID, _S.APPEALED}
)
"""Billed and not yet settled with the payer: the charge still sits in accounts receivable.

``rejected`` counts: the charge was billed and the filing clock is running. ``paid`` does not:
the payer's side is settled and what remains moves to the patient or is closed out.
"""


@dataclass(frozen=True, slots=True)
class Transition:
    """One validated move, ready to be persisted with its audit event."""

    source: ClaimStatus
    target: ClaimStatus
    event: ClaimEvent
    reason: str


class InvalidTransition(ValueError):
    """A move the state machine does not allow."""

    def __init__(
        self,
        current: ClaimStatus,
        target: ClaimStatus | None,
        allowed: frozenset[ClaimStatus],
        event: ClaimEvent | None = None,
    ) -> None:
        self.current = current
        self.target = target
        self.allowed = allowed
        self.event = event
        wanted = f"{target}" if target is not None else f"event {event}"
        allowed_text = ", ".join(sorted(allowed)) or "nothing (absorbing state)"
        super().__init__(f"claim cannot go from {current} to {wanted}; allowed: {allowed_text}")


def _require_reason(reason: str) -> str:
    cleaned = reason.strip()
    if not cleaned:
        raise ValueError("a claim transition needs a reason for the audit trail")
    return cleaned


def transition(
    current: ClaimStatus,
    target: ClaimStatus,
    *,
    reason: str,
    event: ClaimEvent | None = None,
) -> Transition:
    """Validate ``current -> target``; ``event`` defaults to the edge's usual event name."""
    allowed = TRANSITIONS[current]
    names = _EDGE_EVENTS.get((current, target))
    if names is None:
        raise InvalidTransition(current, target, allowed, event)
    if event is not None and event not in names:
        raise InvalidTransition(current, target, allowed, event)
    return Transition(
        source=current,
        target=target,
        event=event if event is not None else names[0],
        reason=_require_reason(reason),
    )


def fire(current: ClaimStatus, event: ClaimEvent, *, reason: str) -> Transition:
    """Apply a named event; each (status, event) pair leads to exactly one target."""
    for target in TRANSITIONS[current]:
        if event in _EDGE_EVENTS[(current, target)]:
            return Transition(
                source=current, target=target, event=event, reason=_require_reason(reason)
            )
    raise InvalidTransition(current, None, TRANSITIONS[current], event)


def allowed_events(current: ClaimStatus) -> frozenset[ClaimEvent]:
    """Every event that is valid from ``current`` (for showing the biller what they can do)."""
    return frozenset(
        name for target in TRANSITIONS[current] for name in _EDGE_EVENTS[(current, target)]
    )


def is_terminal(status: ClaimStatus) -> bool:
    """No further work expected (closed, written off, not billable, replaced, voided)."""
    return status in TERMINAL_STATUSES


def is_absorbing(status: ClaimStatus) -> bool:
    """Nothing can ever leave this status (replaced, voided)."""
    return not TRANSITIONS[status]


def is_open_ar(status: ClaimStatus) -> bool:
    """Billed to the payer and not yet settled (see ``OPEN_AR_STATUSES``)."""
    return status in OPEN_AR_STATUSES
