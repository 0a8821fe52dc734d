"""Tools the model may call: a name, a description, an input Struct (its JSON schema is derived), an async
handler, and whether a human must approve each call. Hosts register their own when embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

import msgspec

from chatstream.providers.base import ToolSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from chatstream.protocol.chunks import DataPart
    from chatstream.providers.base import OutputSchema
    from chatstream.store.base import DocumentStore

__all__ = ["Source", "Tool", "ToolContext", "ToolError", "ToolInputError", "ToolRegistry", "ToolRun"]

In = TypeVar("In", bound=msgspec.Struct)


class ToolError(Exception):
    """A handler's expected failure (unconfigured backend, refused URL, upstream error): its message is
    what the model sees as `errorText`, without an exception class name in front."""


class ToolInputError(Exception):
    """The model's input does not match the tool's schema; reported to the model, not raised to the client."""


class Source(NamedTuple):
    """A page a tool's output cites: the run streams it as a `source-url` part (a citation)."""

    url: str
    title: str | None = None


class ToolRun(Protocol):
    """The run a call belongs to, for handlers that do more than compute an output (the document tools).

    Everything here happens inside the run's work: a stop, a supersede or the run's timeout cancels the
    handler, and with it a nested model call in flight; what a nested call uses is charged to the run.
    """

    @property
    def documents(self) -> DocumentStore:
        """Where documents and suggestions are kept."""
        ...

    @property
    def generates_images(self) -> bool:
        """Whether the run's provider can generate images (`Provider.generates_images`)."""
        ...

    async def write(self, part: DataPart) -> None:
        """Stream a transient `data-*` part to the run's readers. It is never stored with the answer."""
        ...

    async def generate(
        self,
        *,
        system: str,
        prompt: str,
        output: OutputSchema | None = None,
        on_text: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        """A nested model call on the run's provider and model: `system` and one user message `prompt`, no
        tools. Returns the whole text (with `output`, the structured answer's JSON text, still to be
        validated); `on_text` gets each piece as it streams. Its usage is added to the run's (an estimate,
        ceil(characters / 4), when the provider reports none, as for the run's own steps), so it counts
        against the user's token budget. Raises `ProviderError` as a model step would."""
        ...


class ToolContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler may know about the call."""

    user_id: str
    conversation_id: str
    run_id: str
    tool_call_id: str
    run: ToolRun | None = None
    """The run the call belongs to; None where a tool is called outside one (a host's own tests)."""


class Tool(Generic[In]):
    """One callable tool. `handler(input, ctx)` returns any JSON-encodable value.

    `sources(output)`, when given, names the pages an output cites (a search's results, a fetched page):
    the run emits each as a `source-url` part right after the output, once per URL per answer. It gets the
    output as the model does (JSON-shaped: Structs already turned into dicts).
    """

    def __init__(
        self,
        name: str,
        description: str,
        input_type: type[In],
        handler: Callable[[In, ToolContext], Awaitable[Any]],
        *,
        needs_approval: bool = False,
        web: bool = False,
        sources: Callable[[Any], Iterable[Source]] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        self.input_type = input_type
        self.handler = handler
        self.needs_approval = needs_approval
        self.web = web
        """Offered only when a request asks for `webSearch: true`."""
        self._sources = sources
        self.parameters = _input_schema(input_type)

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def parse_input(self, raw: Any) -> In:
        """Validate the model's input (already JSON-decoded) against the input Struct."""
        try:
            return msgspec.convert(raw, self.input_type, strict=False)
        except msgspec.ValidationError as exc:
            raise ToolInputError(str(exc)) from exc

    async def call(self, raw: Any, ctx: ToolContext) -> Any:
        return await self.handler(self.parse_input(raw), ctx)

    def sources(self, output: Any) -> list[Source]:
        """The pages `output` (JSON-shaped) cites; none unless the tool was given a `sources` function."""
        return list(self._sources(output)) if self._sources is not None else []


def _input_schema(input_type: type[msgspec.Struct]) -> dict[str, Any]:
    """JSON schema of the Struct, inlined (providers want a self-contained object schema)."""
    (schema,), components = msgspec.json.schema_components([input_type], ref_template="#/$defs/{name}")
    resolved: dict[str, Any] = dict(components.get(input_type.__name__, schema))
    others = {k: v for k, v in components.items() if k != input_type.__name__}
    if others:
        resolved["$defs"] = others
    resolved.pop("title", None)
    return resolved


class ToolRegistry:
    """The tools a server offers, by name."""

    def __init__(self, tools: Iterable[Tool[Any]] = ()) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool[Any]) -> Tool[Any]:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool[Any] | None:
        return self._tools.get(name)

    def offered(self, *, web: bool) -> list[Tool[Any]]:
        """The tools a run may use: all non-web tools, plus the web ones when asked for."""
        return [t for t in self._tools.values() if web or not t.web]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)
