"""`requestSuggestions {documentId}`: up to five edits the model suggests for a document, as the Vercel chatbot
makes them.

The model is asked for structured output (`ProviderRequest.output`: OpenAI's `response_format: json_schema`,
Anthropic's forced tool call) in a nested call on the run's provider and model, charged to the run. Its answer
is validated (anything else is a tool error to the model); each suggestion is then streamed as a transient
`data-suggestion` part, in the shape `GET /api/suggestions` lists it, and stored for the document's latest
version (`document_created_at`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from chatstream.errors import ProviderError
from chatstream.models import Suggestion, new_id
from chatstream.protocol.chunks import DataPart
from chatstream.providers.base import OutputSchema
from chatstream.tools.base import Tool, ToolError

if TYPE_CHECKING:
    from chatstream.tools.base import ToolContext

__all__ = [
    "MAX_SUGGESTIONS",
    "SUGGESTIONS_OUTPUT",
    "RequestSuggestionsInput",
    "parse_suggestions",
    "request_suggestions_tool",
    "suggestion_json",
]

MAX_SUGGESTIONS = 5

_SYSTEM = (
    "You are a help writing assistant. Given a piece of writing, please offer suggestions to improve the piece "
    "of writing and describe the change. It is very important for the edits to contain full sentences instead "
    f"of just words. Max {MAX_SUGGESTIONS} suggestions. Each originalSentence is copied exactly from the text."
)

_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "originalSentence": {"type": "string", "description": "The original sentence"},
        "suggestedSentence": {"type": "string", "description": "The suggested sentence"},
        "description": {"type": "string", "description": "The description of the suggestion"},
    },
    "required": ["originalSentence", "suggestedSentence", "description"],
    "additionalProperties": False,
}
SUGGESTIONS_OUTPUT = OutputSchema(
    name="suggestions",
    description="Suggested edits to the document",
    # An object at the top (OpenAI's strict mode wants one); at most MAX_SUGGESTIONS are kept (strict mode
    # does not take `maxItems` everywhere, so the limit is the prompt's and ours).
    schema={
        "type": "object",
        "properties": {"suggestions": {"type": "array", "items": _ITEM}},
        "required": ["suggestions"],
        "additionalProperties": False,
    },
)


class RequestSuggestionsInput(msgspec.Struct, frozen=True, rename="camel"):
    document_id: Annotated[str, msgspec.Meta(min_length=1, description="The ID of the document to request edits for.")]


class _Item(msgspec.Struct, frozen=True, rename="camel"):
    original_sentence: str
    suggested_sentence: str
    description: str = ""


class _Answer(msgspec.Struct, frozen=True):
    suggestions: list[_Item]


_answer = msgspec.json.Decoder(_Answer | list[_Item])


def parse_suggestions(text: str) -> list[_Item]:
    """The model's structured answer (an object, or the bare array some models send), at most five, the
    empty ones dropped. Raises `ToolError` for anything else."""
    try:
        answer = _answer.decode(text.strip().encode())
    except msgspec.DecodeError as exc:
        raise ToolError(f"the model's suggestions were not valid: {exc}") from exc
    items = answer.suggestions if isinstance(answer, _Answer) else answer
    kept = [i for i in items if i.original_sentence.strip() and i.suggested_sentence.strip()]
    return kept[:MAX_SUGGESTIONS]


def request_suggestions_tool() -> Tool[RequestSuggestionsInput]:
    async def handler(data: RequestSuggestionsInput, ctx: ToolContext) -> dict[str, Any]:
        run = ctx.run
        if run is None:
            raise ToolError("suggestions can only be requested during a chat run")
        document = await run.documents.get_document(data.document_id)
        if document is None or document.user_id != ctx.user_id:
            raise ToolError(f"no document with id {data.document_id!r}")
        if document.kind == "image" or not (document.content or "").strip():
            raise ToolError("the document has no text to suggest edits for")
        try:
            text = await run.generate(system=_SYSTEM, prompt=document.content or "", output=SUGGESTIONS_OUTPUT)
        except ProviderError as exc:
            raise ToolError(f"suggestions could not be generated: {exc.message}") from exc
        suggestions = [
            Suggestion(
                id=new_id(),
                document_id=document.id,
                document_created_at=document.created_at,
                original_text=item.original_sentence,
                suggested_text=item.suggested_sentence,
                description=item.description or None,
                user_id=ctx.user_id,
            )
            for item in parse_suggestions(text)
        ]
        for suggestion in suggestions:
            await run.write(DataPart(type="data-suggestion", data=suggestion_json(suggestion)))
        await run.documents.save_suggestions(suggestions)
        return {
            "id": document.id,
            "title": document.title,
            "kind": document.kind,
            "message": f"{len(suggestions)} suggestion(s) have been added to the document",
        }

    return Tool(
        "requestSuggestions",
        "Request suggestions (edits) for a document; the user sees them next to it.",
        RequestSuggestionsInput,
        handler,
    )


def suggestion_json(suggestion: Suggestion) -> dict[str, Any]:
    """A suggestion as `data-suggestion` carries it, in `GET /api/suggestions`' shape: `{id, documentId,
    originalText, suggestedText, description, isResolved, createdAt}`, `createdAt` in ISO 8601 (UTC)."""
    created = datetime.fromtimestamp(suggestion.created_at / 1000, tz=UTC)
    return {
        "id": suggestion.id,
        "documentId": suggestion.document_id,
        "originalText": suggestion.original_text,
        "suggestedText": suggestion.suggested_text,
        "description": suggestion.description,
        "isResolved": suggestion.is_resolved,
        "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
