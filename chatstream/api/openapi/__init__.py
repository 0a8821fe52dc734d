"""The OpenAPI 3.1 document of our routes, true to what they take and answer.

Each route names its operation (`@post(..., **documented("sendMessage"))`): an `Operation` subclass that,
when Litestar renders the document, replaces what Litestar could infer (nothing of a body our handlers read
themselves) with the operation's entry in `operations.OPERATIONS`: parameters with their constraints, the
request body, every response with its headers, and `bearerAuth`. Schemas come from the msgspec Structs
(`components`).

This works in any host, under any path, because it travels with the route: each operation carries its
schemas inline (marked `x-component`), so the host's document is complete without our components. The
standalone app's document (`openapi_config()`, what `create_app` serves) hoists them into
`components/schemas` (`hoist`), which is what clients and generators read (`clients/typescript/`).
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import TYPE_CHECKING, Any, ClassVar

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, Operation, SecurityScheme

from chatstream._version import __version__
from chatstream.api.openapi.components import REF, components
from chatstream.api.openapi.operations import OPERATIONS, operation_doc

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler
    from litestar.types.internal_types import PathParameterDefinition

__all__ = [
    "BEARER_AUTH",
    "ChatOperation",
    "add_security_scheme",
    "documented",
    "hoist",
    "inline",
    "openapi_config",
]

BEARER_AUTH = SecurityScheme(
    type="http",
    scheme="bearer",
    description="`Authorization: Bearer <token>`: a configured token (`CHAT_AUTH_TOKENS`) or an HS256 JWT.",
)
"""The `bearerAuth` security scheme every `/api` operation requires."""

_MARK = "x-component"
_MAPPING = "x-mapping"


def inline(node: Any, schemas: dict[str, Any] | None = None, _seen: tuple[str, ...] = ()) -> Any:
    """`node` with every `$ref` to a component replaced by the component itself, marked `x-component: <name>`
    (so `hoist` can put it back). A discriminator's mapping (references too) becomes `x-mapping`."""
    schemas = schemas if schemas is not None else _components()
    if isinstance(node, list):
        return [inline(v, schemas, _seen) for v in node]
    if not isinstance(node, dict):
        return node
    target = node.get("$ref")
    if isinstance(target, str) and target.startswith(REF):
        name = target[len(REF) :]
        if name in _seen:
            raise ValueError(f"recursive schema {name!r} cannot be inlined")
        return {_MARK: name, **inline(schemas[name], schemas, (*_seen, name))}
    out = {k: inline(v, schemas, _seen) for k, v in node.items()}
    discriminator = out.get("discriminator")
    if isinstance(discriminator, dict) and "mapping" in discriminator:
        mapping = discriminator.pop("mapping")
        discriminator[_MAPPING] = {tag: ref[len(REF) :] for tag, ref in mapping.items()}
    return out


def hoist(document: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `inline` for a whole document: every `x-component` schema moves to
    `components/schemas` (once) and is referenced where it was."""
    found: dict[str, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items()}
        discriminator = out.get("discriminator")
        if isinstance(discriminator, dict) and _MAPPING in discriminator:
            mapping = discriminator.pop(_MAPPING)
            discriminator["mapping"] = {tag: REF + name for tag, name in mapping.items()}
        name = out.pop(_MARK, None)
        if name is None:
            return out
        if found.setdefault(name, out) != out:
            raise ValueError(f"two different schemas are named {name!r}")
        return {"$ref": REF + name}

    hoisted: dict[str, Any] = walk(document)
    schemas = hoisted.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(found)
    hoisted["components"]["schemas"] = dict(sorted(schemas.items()))
    return hoisted


@functools.cache
def _components() -> dict[str, Any]:
    return components()


class ChatOperation(Operation):
    """An operation documented by `operations.OPERATIONS[doc_name]` rather than by what Litestar infers."""

    doc_name: ClassVar[str] = ""

    def to_schema(self) -> dict[str, Any]:
        out = super().to_schema()
        for inferred in ("parameters", "requestBody", "responses", "security"):
            out.pop(inferred, None)
        doc = inline(operation_doc(self.doc_name))
        if not doc["security"]:
            del doc["security"]
        out.update(doc)
        return out


@functools.cache
def _operation_class(name: str) -> type[ChatOperation]:
    if name not in OPERATIONS:
        raise KeyError(f"no OpenAPI entry for operation {name!r}")
    return type(f"{name[0].upper()}{name[1:]}Operation", (ChatOperation,), {"doc_name": name})


def _operation_id(name: str) -> Any:
    """The operation id: `name`, prefixed by the path our router is mounted under (`/chat`: `chat_name`), so
    that two mounts in one host never collide."""

    def create(
        route_handler: HTTPRouteHandler, http_method: str, path_components: list[str | PathParameterDefinition]
    ) -> str:
        own = max(len([c for c in path.split("/") if c]) for path in route_handler.paths)
        prefix = [c for c in path_components[: len(path_components) - own] if isinstance(c, str) and c]
        return "_".join([*(p.replace("-", "_").replace(".", "_") for p in prefix), name])

    return create


def documented(name: str) -> dict[str, Any]:
    """The route decorator's arguments that document it as the operation `name`: `@get(..., **documented(n))`."""
    return {"operation_class": _operation_class(name), "operation_id": _operation_id(name)}


def add_security_scheme(config: OpenAPIConfig) -> None:
    """Declare `bearerAuth` in a host's OpenAPI config, which our operations require (unless it has one)."""
    if isinstance(config.components, list):
        if not any((c.security_schemes or {}).get("bearerAuth") for c in config.components):
            config.components.append(Components(security_schemes={"bearerAuth": BEARER_AUTH}))
        return
    schemes = dict(config.components.security_schemes or {})
    schemes.setdefault("bearerAuth", BEARER_AUTH)
    config.components.security_schemes = schemes


class _HoistedOpenAPI(OpenAPI):
    def to_schema(self) -> dict[str, Any]:
        return hoist(super().to_schema())


class _ChatOpenAPIConfig(OpenAPIConfig):
    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        return _HoistedOpenAPI(**{f.name: getattr(base, f.name) for f in fields(base)})


def openapi_config(**overrides: Any) -> OpenAPIConfig:
    """The standalone app's OpenAPI config: title `chatstream`, the package version, `bearerAuth`, component
    schemas hoisted; Swagger UI at `/schema` (and `/schema/swagger`), Scalar at `/schema/scalar`, the document
    at `/schema/openapi.json`."""
    options: dict[str, Any] = {
        "title": "chatstream",
        "version": __version__,
        "description": (
            "Chat answers from LLM providers as resumable Server-Sent Events. Every `/api` route needs "
            '`Authorization: Bearer <token>`. Errors are `{"error": <message>}` plus optional fields '
            "(`code`, and on a 429 `retryAfter` and `limit`)."
        ),
        "components": Components(security_schemes={"bearerAuth": BEARER_AUTH}),
        "render_plugins": [SwaggerRenderPlugin(path="/swagger"), ScalarRenderPlugin(path="/scalar")],
        **overrides,
    }
    return _ChatOpenAPIConfig(**options)
