"""Tools the model may call: a name, a description, an input Struct (its JSON schema is derived), an async
handler, and whether a human must approve each call. Hosts register their own when embedding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import msgspec

from chatstream.providers.base import ToolSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

__all__ = ["Source", "Tool", "ToolContext", "ToolError", "ToolInputError", "ToolRegistry"]

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


class ToolContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler may know about the call."""

    user_id: str
    conversation_id: str
    run_id: str
    tool_call_id: str


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
