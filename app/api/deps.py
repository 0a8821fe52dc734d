"""The services handlers use, kept on `app.state` and handed to handlers through `Provide`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request  # noqa: TC002 - Litestar reads dependency annotations at runtime
from litestar.datastructures import State  # noqa: TC002

from app.api.auth import require_principal
from app.models import Principal  # noqa: TC001

if TYPE_CHECKING:

    from app.api.auth import Authenticate
    from app.providers.registry import ProviderRegistry
    from app.runs.registry import RunRegistry
    from app.runs.service import RunService
    from app.settings import Settings
    from app.store.base import ConversationStore
    from app.streams.base import StreamBuffer
    from app.tools.base import ToolRegistry

__all__ = ["STATE_KEY", "Services", "provide_principal", "provide_services"]

STATE_KEY = "chat_services"


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
        self.counters: dict[str, int] = {}

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


def provide_services(state: State) -> Services:
    services: Services = state[STATE_KEY]
    return services


async def provide_principal(request: Request[Any, Any, Any], services: Services) -> Principal:
    return await require_principal(services.authenticate, request)
