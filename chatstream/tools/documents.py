"""`createDocument` and `updateDocument`: documents (artifacts) the model writes with a nested model call,
streamed into the run as the Vercel chatbot streams them.

Both generate the content with a nested call on the run's provider and model (`ToolRun.generate`), charged
to the run and cut short by its stop or timeout. The client sees transient data parts, none of which is
stored with the answer:

* `createDocument {title, kind}`: `data-kind`, `data-id`, `data-title`, `data-clear`, then the content,
  then `data-finish`;
* `updateDocument {id, description}`: `data-clear`, the new content, `data-finish`.

The content streams as the chatbot's client expects it: `data-textDelta` parts carry the text's pieces (the
client appends them); `data-codeDelta` and `data-sheetDelta` carry the whole content so far (the client
replaces it), at most every `CUMULATIVE_EVERY` characters and once more at the end, with a Markdown fence
the model may have put around it removed. `data-imageDelta` carries an image (base64), for a provider that
declares `generates_images` (none of the shipped ones does: the `image` kind is then a tool error).

The final content is stored as a new version (`DocumentStore.save_document`, owned by the run's user) once
generation is complete. A run stopped during generation stores nothing: the client keeps the partial draft
it was shown, the document has no version (createDocument) or keeps its previous one (updateDocument).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from chatstream.errors import ProviderError
from chatstream.models import Document, DocumentKind, new_id, now_ms
from chatstream.protocol.chunks import DataPart
from chatstream.tools.base import Tool, ToolError
from chatstream.tools.suggestions import request_suggestions_tool

if TYPE_CHECKING:
    from chatstream.tools.base import ToolContext, ToolRun

__all__ = [
    "CREATED",
    "CUMULATIVE_EVERY",
    "UPDATED",
    "CreateDocumentInput",
    "UpdateDocumentInput",
    "create_document_tool",
    "document_tools",
    "strip_fence",
    "update_document_tool",
]

CREATED = "A document was created and is now visible to the user."
UPDATED = "The document has been updated successfully."
CUMULATIVE_EVERY = 48
"""Characters of new content between two `data-codeDelta` / `data-sheetDelta` parts (each carries all so far)."""

# The chatbot's prompts (lib/ai/prompts.ts), with what our plain-text generation needs on top (no fences).
_CREATE_PROMPTS: dict[DocumentKind, str] = {
    "text": "Write about the given topic. Markdown is supported. Use headings wherever appropriate.",
    "code": (
        "You are a code generator that creates self-contained, executable code snippets, in Python unless the "
        "topic names another language. When writing code:\n"
        "1. Each snippet should be complete and runnable on its own\n"
        "2. Prefer using print() statements to display outputs\n"
        "3. Include helpful comments explaining the code\n"
        "4. Keep snippets concise (generally under 15 lines)\n"
        "5. Avoid external dependencies - use the standard library\n"
        "6. Handle potential errors gracefully\n"
        "7. Return meaningful output that demonstrates the code's functionality\n"
        "8. Don't use input() or other interactive functions\n"
        "9. Don't access files or network resources\n"
        "10. Don't use infinite loops\n"
        "Answer with the single code snippet only: no prose before or after it, no Markdown fences."
    ),
    "sheet": (
        "You are a spreadsheet creation assistant. Create a spreadsheet in CSV format based on the given prompt. "
        "The spreadsheet should contain meaningful column headers and data. Answer with the CSV only: no prose "
        "before or after it, no Markdown fences."
    ),
    "image": "Generate an image for the given description.",
}
_UPDATE_PROMPTS: dict[DocumentKind, str] = {
    "text": "Improve the following contents of the document based on the given prompt.",
    "code": (
        "Improve the following code snippet based on the given prompt. Answer with the whole improved snippet "
        "only: no prose before or after it, no Markdown fences."
    ),
    "sheet": (
        "Improve the following spreadsheet based on the given prompt. Answer with the whole CSV only: no prose "
        "before or after it, no Markdown fences."
    ),
    "image": "Change the following image based on the given prompt.",
}
_DELTA: dict[DocumentKind, str] = {
    "text": "data-textDelta",
    "code": "data-codeDelta",
    "sheet": "data-sheetDelta",
    "image": "data-imageDelta",
}
_FENCE_OPEN = re.compile(r"\A\s*```[^\n]*\n")
_FENCE_CLOSE = re.compile(r"\n?```\s*\Z")


class CreateDocumentInput(msgspec.Struct, frozen=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="The document's title.")]
    kind: Annotated[
        DocumentKind,
        msgspec.Meta(description="text (Markdown writing), code (a code snippet), sheet (CSV), image."),
    ]


class UpdateDocumentInput(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, description="The ID of the document to update.")]
    description: Annotated[
        str, msgspec.Meta(min_length=1, description="The description of changes that need to be made.")
    ]


def _run_of(ctx: ToolContext) -> ToolRun:
    if ctx.run is None:
        raise ToolError("documents can only be written during a chat run")
    return ctx.run


def strip_fence(content: str) -> str:
    """`content` without a Markdown code fence around it (models add one despite being asked not to)."""
    if not content.lstrip().startswith("```"):
        return content
    return _FENCE_CLOSE.sub("", _FENCE_OPEN.sub("", content, count=1), count=1)


async def _generate(run: ToolRun, kind: DocumentKind, *, system: str, prompt: str) -> str:
    """Generate the content, streaming it as `kind`'s delta parts; the final content."""
    delta = _DELTA[kind]
    if kind == "text":

        async def on_text(piece: str) -> None:
            await run.write(DataPart(type=delta, data=piece))

        content = await _nested(run, system=system, prompt=prompt, on_text=on_text)
        return content

    # Cumulative kinds: the content so far, every CUMULATIVE_EVERY new characters and once at the end.
    pieces: list[str] = []
    size = sent = 0

    async def on_piece(piece: str) -> None:
        nonlocal size, sent
        pieces.append(piece)
        size += len(piece)
        if size - sent >= CUMULATIVE_EVERY:
            sent = size
            await run.write(DataPart(type=delta, data=strip_fence("".join(pieces))))

    content = strip_fence(await _nested(run, system=system, prompt=prompt, on_text=on_piece))
    await run.write(DataPart(type=delta, data=content))
    return content


async def _nested(run: ToolRun, **kw: Any) -> str:
    try:
        text: str = await run.generate(**kw)
    except ProviderError as exc:
        raise ToolError(f"the document could not be generated: {exc.message}") from exc
    return text


def _check_kind(run: ToolRun, kind: DocumentKind) -> None:
    if kind == "image" and not run.generates_images:
        raise ToolError("this model cannot generate images: choose the kind text, code or sheet")


def create_document_tool() -> Tool[CreateDocumentInput]:
    async def handler(data: CreateDocumentInput, ctx: ToolContext) -> dict[str, Any]:
        run = _run_of(ctx)
        _check_kind(run, data.kind)
        document_id = new_id()
        for name, value in (("kind", data.kind), ("id", document_id), ("title", data.title), ("clear", None)):
            await run.write(DataPart(type=f"data-{name}", data=value))
        content = await _generate(run, data.kind, system=_CREATE_PROMPTS[data.kind], prompt=data.title)
        await run.write(DataPart(type="data-finish", data=None))
        await run.documents.save_document(
            Document(
                id=document_id,
                created_at=now_ms(),
                title=data.title,
                content=content,
                kind=data.kind,
                user_id=ctx.user_id,
            )
        )
        return {"id": document_id, "title": data.title, "kind": data.kind, "content": CREATED}

    return Tool(
        "createDocument",
        "Create a document for a writing or content creation activity (an essay, a code snippet, a spreadsheet). "
        "This tool will call other functions that will generate the contents of the document based on the "
        "title and kind; the user sees it as it is written.",
        CreateDocumentInput,
        handler,
    )


def update_document_tool() -> Tool[UpdateDocumentInput]:
    async def handler(data: UpdateDocumentInput, ctx: ToolContext) -> dict[str, Any]:
        run = _run_of(ctx)
        current = await run.documents.get_document(data.id)
        if current is None or current.user_id != ctx.user_id:  # someone else's is as unknown as a missing one
            raise ToolError(f"no document with id {data.id!r}")
        _check_kind(run, current.kind)
        await run.write(DataPart(type="data-clear", data=None))
        system = f"{_UPDATE_PROMPTS[current.kind]}\n\n{current.content or ''}"
        content = await _generate(run, current.kind, system=system, prompt=data.description)
        await run.write(DataPart(type="data-finish", data=None))
        await run.documents.save_document(msgspec.structs.replace(current, created_at=now_ms(), content=content))
        return {"id": current.id, "title": current.title, "kind": current.kind, "content": UPDATED}

    return Tool("updateDocument", "Update a document with the given description.", UpdateDocumentInput, handler)


def document_tools() -> list[Tool[Any]]:
    """`createDocument`, `updateDocument` and `requestSuggestions`: they need nothing but the run."""
    return [create_document_tool(), update_document_tool(), request_suggestions_tool()]
