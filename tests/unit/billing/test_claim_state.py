from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.claim_state import (
    OPEN_AR_STATUSES,
    TRANSITIONS,
    ClaimEvent,
    ClaimStatus,
    InvalidTransition,
    allowed_events,
    fire,
    is_absorbing,
    is_open_ar,
    is_terminal,
    transition,
)

S = ClaimStatus
E = ClaimEvent


def test_every_status_has_an_entry() -> None:
    assert set(TRANSITIONS) == set(ClaimStatus)


def test_every_status_is_reachable_from_draft() -> None:
    seen = {S.DRAFT}
    queue = deque([S.DRAFT])
    while queue:
        for target in TRANSITIONS[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(ClaimStatus)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.DRAFT, S.READY),
        (S.DRAFT, S.ON_HOLD),
        (S.DRAFT, S.NOT_BILLABLE),
        (S.ON_HOLD, S.READY),
        (S.READY, S.SUBMITTED),
        (S.SUBMITTED, S.ACCEPTED),
        (S.SUBMITTED, S.REJECTED),
        (S.SUBMITTED, S.PAID),
        (S.SUBMITTED, S.DENIED),
        (S.ACCEPTED, S.REJECTED),  # payer 277CA rejects after clearinghouse accepted
        (S.ACCEPTED, S.PARTIALLY_PAID),
        (S.REJECTED, S.READY),  # never filed: correct and send again
        (S.REJECTED, S.WRITTEN_OFF),
        (S.DENIED, S.APPEALED),
        (S.DENIED, S.REPLACED),
        (S.DENIED, S.VOIDED),
        (S.DENIED, S.WRITTEN_OFF),
        (S.DENIED, S.CLOSED),
        (S.PAID, S.REPLACED),
        (S.PAID, S.VOIDED),
        (S.PAID, S.CLOSED),
        (S.PAID, S.DENIED),  # reversal and re-adjudication
        (S.APPEALED, S.PAID),
        (S.APPEALED, S.DENIED),
        (S.CLOSED, S.REPLACED),
        (S.WRITTEN_OFF, S.APPEALED),
        (S.NOT_BILLABLE, S.DRAFT),
    ],
)
def test_allowed_transitions(source: ClaimStatus, target: ClaimStatus) -> None:
    moved = transition(source, target, reason="test")
    assert (moved.source, moved.target) == (source, target)
    assert target in TRANSITIONS[source]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.DRAFT, S.SUBMITTED),  # must pass the scrubber first
        (S.REJECTED, S.APPEALED),  # a rejection cannot be appealed
        (S.REJECTED, S.REPLACED),  # nothing on file to replace
        (S.REJECTED, S.VOIDED),
        (S.DENIED, S.READY),  # a filed claim is corrected by replacement
        (S.PAID, S.APPEALED),
        (S.SUBMITTED, S.CLOSED),
        (S.VOIDED, S.READY),
        (S.REPLACED, S.PAID),
        (S.ON_HOLD, S.SUBMITTED),
    ],
)
def test_forbidden_transitions(source: ClaimStatus, target: ClaimStatus) -> None:
    with pytest.raises(InvalidTransition) as caught:
        transition(source, target, reason="test")
    assert caught.value.current is source
    assert caught.value.target is target
    assert caught.value.allowed == TRANSITIONS[source]
    assert str(source) in str(caught.value)


def test_absorbing_states_have_no_exit() -> None:
    assert is_absorbing(S.VOIDED)
    assert is_absorbing(S.REPLACED)
    assert not is_absorbing(S.CLOSED)
    assert {s for s in ClaimStatus if is_absorbing(s)} == {S.VOIDED, S.REPLACED}


def test_reason_is_required() -> None:
    with pytest.raises(ValueError, match="reason"):
        transition(S.DRAFT, S.READY, reason="  ")
    with pytest.raises(ValueError, match="reason"):
        fire(S.DRAFT, E.SCRUB_PASSED, reason="")


def test_default_and_explicit_events() -> None:
    assert transition(S.READY, S.SUBMITTED, reason="batch 12").event is E.SUBMIT
    assert transition(S.DENIED, S.CLOSED, reason="r").event is E.CLOSE
    moved = transition(
        S.DENIED, S.CLOSED, reason="109: bill Medicaid MCO", event=E.BILL_OTHER_PAYER
    )
    assert moved.event is E.BILL_OTHER_PAYER
    assert moved.reason == "109: bill Medicaid MCO"
    with pytest.raises(InvalidTransition):
        transition(S.DENIED, S.CLOSED, reason="r", event=E.SUBMIT)


def test_fire_resolves_the_target() -> None:
    assert fire(S.REJECTED, E.CORRECT, reason="fixed member id").target is S.READY
    assert fire(S.PARTIALLY_PAID, E.BILL_PATIENT, reason="PR-2").target is S.CLOSED
    assert fire(S.NOT_BILLABLE, E.REOPEN, reason="coverage found").target is S.DRAFT
    assert fire(S.WRITTEN_OFF, E.REOPEN, reason="still in time").target is S.READY
    with pytest.raises(InvalidTransition) as caught:
        fire(S.REJECTED, E.APPEAL, reason="no")
    assert caught.value.event is E.APPEAL
    assert caught.value.target is None


def test_each_status_event_pair_has_one_target() -> None:
    for status in ClaimStatus:
        for event in allowed_events(status):
            targets = {
                target for target in TRANSITIONS[status] if _edge_allows(status, target, event)
            }
            assert len(targets) == 1, (status, event, targets)


def _edge_allows(source: ClaimStatus, target: ClaimStatus, event: ClaimEvent) -> bool:
    try:
        transition(source, target, reason="probe", event=event)
    except InvalidTransition:
        return False
    return True


def test_terminal_and_open_ar() -> None:
    assert is_terminal(S.CLOSED)
    assert is_terminal(S.WRITTEN_OFF)
    assert is_terminal(S.VOIDED)
    assert not is_terminal(S.DENIED)
    assert is_open_ar(S.SUBMITTED)
    assert is_open_ar(S.DENIED)
    assert is_open_ar(S.REJECTED)
    assert not is_open_ar(S.READY)
    assert not is_open_ar(S.PAID)
    assert not is_open_ar(S.CLOSED)
    assert not (OPEN_AR_STATUSES & {s for s in ClaimStatus if is_terminal(s)})


@given(st.lists(st.sampled_from(list(ClaimEvent)), max_size=40))
def test_random_event_walks_stay_on_the_graph(events: list[ClaimEvent]) -> None:
    status = S.DRAFT
    for event in events:
        if event in allowed_events(status):
            moved = fire(status, event, reason="walk")
            assert moved.target in TRANSITIONS[status]
            status = moved.target
        else:
            with pytest.raises(InvalidTransition):
                fire(status, event, reason="walk")
