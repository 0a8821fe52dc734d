"""Every Redis key, built in one place: `{prefix}:{<scope>:<id>}:<kind>[:<sub>]`.

The braces are a Redis Cluster hash tag: only the part between them picks a key's slot, so everything of
one conversation lands on one slot (and node), and so does everything of one user. A Lua script may then
touch all the keys of its owner in one atomic call, on a cluster as on a single Redis.

| scope | tag | keys |
|---|---|---|
| conversation | `{c:<id>}` | stream, streammeta, run, hold, conv, msgs, msgids, votes, sruns |
| user | `{u:<id>}` | convs, chan:<channel>, prefs, limit:msg:<day>, limit:tok:<day>, limit:runs, limit:receipt:<run> |
| run | `{r:<id>}` | stopreq, stop (the stop channel), srun (which conversation holds its suspended state) |
| document | `{d:<id>}` | docs, times (its versions), sugg, suggv (the suggestions on them) |
| client address | `{ip:<addr>}` | limit:rate |
| idempotency key | `{k:<key>}` | (the key itself: `chat:{k:idem:<user>:<header>}`) |

An id inside a tag must not close it early: `{`, `}` and `%` in an id are percent-encoded (`%7B`, `%7D`,
`%25`). Ids in `chatstream.models.ID_GRAMMAR` have none, so their keys read as the id itself; a user id from
a token or an `Idempotency-Key` may have them, and still gets a key of its own, in a slot of its own.

This module imports nothing from redis: the limits build their keys here whatever their backend.
"""

from __future__ import annotations

from chatstream.errors import ConfigError

__all__ = ["Keys"]

_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


def _tag_safe(ident: str) -> str:
    return ident.translate(_ESCAPES) if ("{" in ident or "}" in ident or "%" in ident) else ident


class Keys:
    """Key names under one prefix. Args: prefix: first part of every key (no braces: a hash tag in the
    prefix would pin every key to one slot)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigError(f"Redis key prefix {prefix!r} must not contain braces (they are hash tags)")
        self.prefix = prefix

    def tagged(self, scope: str, ident: str, *kind: str) -> str:
        """`{prefix}:{<scope>:<ident>}:<kind>:...`, the one format of every key."""
        base = f"{self.prefix}:{{{scope}:{_tag_safe(ident)}}}"
        return f"{base}:{':'.join(kind)}" if kind else base

    def conversation(self, conversation_id: str, *kind: str) -> str:
        """A key of one conversation (its stream, run lease, messages, votes, suspended runs)."""
        return self.tagged("c", conversation_id, *kind)

    def user(self, user_id: str, *kind: str) -> str:
        """A key of one user (conversation indexes, preferences, quotas, concurrency leases)."""
        return self.tagged("u", user_id, *kind)

    def run(self, run_id: str, *kind: str) -> str:
        """A key of one run, found by its id alone (stop request and channel, suspended-run pointer)."""
        return self.tagged("r", run_id, *kind)

    def document(self, document_id: str, *kind: str) -> str:
        """A key of one document (its versions, and the suggestions made for them)."""
        return self.tagged("d", document_id, *kind)
