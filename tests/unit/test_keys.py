"""Key layout (`chatstream.keys`): everything of one conversation in one Redis Cluster slot, everything of
one user in another, for any id; keys of different owners never collide."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from chatstream.errors import ConfigError
from chatstream.keys import Keys
from chatstream.limits import Limits, MemoryRateLimiter
from chatstream.models import Principal

KEYS = Keys("chat")
IDS = ["c1", "a.b-c:d", "x" * 128, "run-1:2:3", "odd}id{", "100%", "{c:other}"]


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("ident", IDS)
def test_every_key_of_a_conversation_is_in_one_slot(ident: str) -> None:
    kinds = ["stream", "streammeta", "run", "hold", "conv", "msgs", "msgids", "votes", "sruns", "srun:run-9"]
    slots = {slot(KEYS.conversation(ident, *kind.split(":"))) for kind in kinds}
    assert slots == {slot(KEYS.conversation(ident))}


@pytest.mark.parametrize("ident", IDS)
def test_every_key_of_a_user_is_in_one_slot(ident: str) -> None:
    kinds = [("convs",), ("chan", "web"), ("chan", "x}:y"), ("prefs",), ("limit", "runs"), ("limit", "msg", "20260310")]
    assert {slot(KEYS.user(ident, *kind)) for kind in kinds} == {slot(KEYS.user(ident))}


async def test_the_limits_of_a_user_share_its_slot() -> None:
    limits = Limits(MemoryRateLimiter(), tokens_per_day={"free": 100})
    admission = await limits.admit(Principal(user_id="alice"), "1.2.3.4", run_id="run-1")
    user = slot(KEYS.user("alice"))
    assert {slot(admission.lease_key), slot(admission.token_key), slot(admission.token_receipt)} == {user}


def test_ids_in_the_grammar_read_as_themselves() -> None:
    assert KEYS.conversation("a.b-c:d", "msgs") == "chat:{c:a.b-c:d}:msgs"
    assert KEYS.user("alice", "chan", "web") == "chat:{u:alice}:chan:web"
    assert KEYS.run("run-1", "stop") == "chat:{r:run-1}:stop"


def test_braces_in_an_id_cannot_move_or_merge_keys() -> None:
    # Without the escape, "a}:chan:b"'s index and "a"'s channel "b}:convs" would be the same key.
    assert KEYS.user("a}:chan:b", "convs") != KEYS.user("a", "chan", "b}:convs")
    # An id cannot borrow another owner's tag.
    assert slot(KEYS.conversation("{c:other}")) != slot(KEYS.conversation("other"))
    assert KEYS.user("100%") != KEYS.user("100%25")


def test_a_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ConfigError):
        Keys("chat{x}")
