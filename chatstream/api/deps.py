"""The services handlers use, handed to them through `Provide` on our router only.

The dependency names (`chat_services`, `chat_principal`) are prefixed so they never shadow, or get shadowed
by, a host's own `services` or `principal`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from litestar import Request  # noqa: TC002
from litestar.di import NamedDependency

from chatstream.api.access_log import PRINCIPAL_STATE_KEY
from chatstream.api.auth import require_principal
from chatstream.errors import BotDetectedError, PayloadTooLargeError
from chatstream.models import Principal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chatstream.api.auth import Authenticate, BotCheck
    from chatstream.models import Workflow
    from chatstream.providers.registry import ProviderRegistry
    from chatstream.runs.registry import RunRegistry
    from chatstream.runs.service import RunService
    from chatstream.settings import Settings
    from chatstream.store.base import ConversationStore
    from chatstream.streams.base import StreamBuffer
    from chatstream.tools.base import ToolRegistry

__all__ = ["PrincipalDep", "Services", "ServicesDep", "provide_principal", "refuse_bots"]


class Services:
    """A plain class on purpose: Litestar validates dependency values, and an opaque class is only
    isinstance-checked, where a dataclass would have its fields inspected on every request."""

    def __init__(
        self,
        *,
        settings: Settings,
        buffer: StreamBuffer,
        store: ConversationStore,
        registry: RunRegistry,
        providers: ProviderRegistry,
        tools: ToolRegistry,
        runs: RunService,
        authenticate: Authenticate,
        limits: Any = None,
        redis: Any = None,
        bot_check: BotCheck | None = None,
        workflows: Mapping[str, Workflow] | None = None,
    ) -> None:
        self.settings = settings
        self.buffer = buffer
        self.store = store
        self.registry = registry
        self.providers = providers
        self.tools = tools
        self.runs = runs
        self.authenticate = authenticate
        self.limits = limits
        self.redis = redis
        self.bot_check = bot_check
        """The host's bot check, asked by the routes that start a run (`refuse_bots`)."""
        self.workflows: Mapping[str, Workflow] = workflows or {}
        """Seed-003 workflow presets by id (lower-case UUID), from `CHAT_WORKFLOWS`."""
        self.metrics = runs.deps.metrics
        self.documents = runs.deps.documents

    def count(self, name: str, n: int = 1) -> None:
        self.metrics.requests[name] += n


ServicesDep = NamedDependency[Services]
PrincipalDep = NamedDependency[Principal]


async def provide_principal(request: Request[Any, Any, Any], chat_services: ServicesDep) -> Principal:
    principal = await require_principal(chat_services.authenticate, request)
    request.state[PRINCIPAL_STATE_KEY] = principal  # the access log names the user
    return principal


async def refuse_bots(request: Request[Any, Any, Any], services: Services) -> None:
    """`401 {"error": "bot detected"}` when the host's `bot_check` says so. Called first by every route that
    starts a run (send, approve, regenerate, the seed-003 stream), before the body is read: nothing is stored
    and no limit is charged for a refused request."""
    check = services.bot_check
    if check is None:
        return
    verdict = check(request)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    if verdict:
        raise BotDetectedError()


async def read_body(request: Request[Any, Any, Any], services: Services) -> bytes:
    """The request body, refused with 413 past `max_body_bytes` (checked on the header, then while reading,
    so an oversized upload is never held in memory whole)."""
    limit = services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
