"""Seed 003's workflow presets: `CHAT_WORKFLOWS` names a JSON file `[{id, name, system, tools, provider?, model?,
maxSteps?}]`, read once at start-up.

`load_workflows` reads and validates the file on its own (the JSON, the fields, UUID ids, no duplicates);
`check_workflows` then holds it against what the app serves (tool names, providers and models), once those are
built. Either raises `ConfigError` naming the file, the entry and the problem: a bad preset stops the start-up
rather than failing the first message that names it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from chatstream.errors import BadRequestError, ConfigError
from chatstream.models import Workflow

if TYPE_CHECKING:
    from collections.abc import Mapping

    from chatstream.providers.registry import ProviderRegistry
    from chatstream.tools.base import ToolRegistry

__all__ = ["check_workflows", "is_uuid", "load_workflows"]


class _Entry(Workflow, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A preset as the file spells it: an unknown field (a typo such as `maxstep`) is an error, not ignored.
    The stored `Workflow` allows them, so records written by a newer version still decode."""


_decoder = msgspec.json.Decoder(list[_Entry])


def is_uuid(value: str) -> bool:
    """Whether `value` is a UUID in its usual hyphenated form (any version, either case)."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value.lower()


def load_workflows(path: str) -> dict[str, Workflow]:
    """The presets of the file at `path`, by id (lower-cased)."""
    where = f"CHAT_WORKFLOWS ({path})"
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        entries = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from exc
    workflows: dict[str, Workflow] = {}
    for index, entry in enumerate(entries):
        at = f"{where}: entry {index}"
        if not is_uuid(entry.id):
            raise ConfigError(f"{at}: id {entry.id!r} is not a UUID")
        key = entry.id.lower()
        if key in workflows:
            raise ConfigError(f"{at}: id {entry.id!r} is used twice")
        if not entry.name.strip():
            raise ConfigError(f"{at}: name must not be empty")
        if entry.max_steps is not None and entry.max_steps < 1:
            raise ConfigError(f"{at}: maxSteps must be at least 1")
        if len(set(entry.tools)) != len(entry.tools):
            raise ConfigError(f"{at}: tools lists a tool twice")
        workflows[key] = Workflow(**msgspec.structs.asdict(entry) | {"id": key})
    return workflows


def check_workflows(workflows: Mapping[str, Workflow], tools: ToolRegistry, providers: ProviderRegistry) -> None:
    """Every tool a preset names is served, and its provider and model resolve."""
    for workflow in workflows.values():
        at = f"CHAT_WORKFLOWS: workflow {workflow.id} ({workflow.name!r})"
        unknown = [name for name in workflow.tools if name not in tools]
        if unknown:
            raise ConfigError(f"{at}: unknown tool {unknown[0]!r}")
        if workflow.provider is not None or workflow.model is not None:
            try:
                providers.resolve(workflow.provider, workflow.model)
            except BadRequestError as exc:
                raise ConfigError(f"{at}: {exc.message}") from exc
