"""`audit.hash_template` + the SQL substitution (`sql_event_hash`) hash exactly what
`audit.event_hash` hashes, whatever the free-text fields hold."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.audit import event_hash, hash_template

AT = datetime(2026, 11, 27, 15, 0, 0, 123456, tzinfo=UTC)


def _as_sql_would(template: str, entity_id: str, seq: int, prev: str) -> str:
    """The three replace() calls of `sql_event_hash`, in Python."""
    out = template.replace('"id":null', '"id":' + json.dumps(entity_id), 1)
    out = out.replace('"prev":null', f'"prev":"{prev}"', 1)
    return out.replace('"seq":null', f'"seq":{seq}', 1)


@given(
    actor=st.text(max_size=40),
    request_id=st.none() | st.text(max_size=20),
    seq=st.integers(min_value=1, max_value=10**9),
)
def test_the_template_hashes_like_event_hash(actor: str, request_id: str | None, seq: int) -> None:
    entity_id, prev = "6c0a3f3e-0000-4000-8000-000000000001", "ab" * 32
    fields = {
        "tenant_id": "t1",
        "entity_type": "work_item",
        "action": "work_item.assigned",
        "actor": actor,
        "request_id": request_id,
        "reason": "next",
        "before": {"status": "open", "assignee": None},
        "after": {"status": "in_progress", "assignee": actor},
        "occurred_at": AT,
    }
    filled = _as_sql_would(hash_template(**fields), entity_id, seq, prev)
    want = event_hash(prev_hash=prev, entity_id=entity_id, seq=seq, **fields)
    assert hashlib.sha256(filled.encode()).hexdigest() == want


def test_a_null_id_prev_or_seq_key_inside_before_or_after_is_refused() -> None:
    with pytest.raises(ValueError, match="null id, prev or seq"):
        hash_template(
            tenant_id="t",
            entity_type="x",
            action="a",
            actor="b",
            request_id=None,
            reason=None,
            before={"id": None},
            after=None,
            occurred_at=AT,
        )
