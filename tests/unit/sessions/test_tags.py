"""How Palisade names what it creates on Tavus, and reads the names back."""

from __future__ import annotations

import uuid

from app.domain.sessions import tags


def test_a_check_pal_name_is_recognised_and_never_taken_for_a_session() -> None:
    check_id = uuid.uuid4()
    name = tags.check_pal_name("Coach", check_id, "Palisade profile check")
    assert name == f"Coach (palisade check {check_id})"
    assert tags.is_check_pal_name(name)
    assert tags.session_id_from_name(name) is None
    assert tags.pool_id_from_name(name) is None
    assert not tags.is_check_pal_name(tags.pal_name("Coach", check_id))
    assert not tags.is_check_pal_name(None)
