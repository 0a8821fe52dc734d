// Compiled by the tests (`tsc --noEmit`), never shipped: how the generated types are used, and a check that
// they say what the server takes and answers.
import type {
  ApiError,
  ChatApproveInput,
  ChatSendInput,
  ConversationPage,
  MessagePage,
  PlainEvent,
  UiChunk,
  operations,
  paths,
} from "./schema";

// The four shapes of POST /api/chat.
const shapes: ChatSendInput[] = [
  { parts: [{ type: "text", text: "Hello" }], threadId: "t1", model: "gpt-4o" },
  { parts: [{ type: "file", mediaType: "image/png", url: "data:image/png;base64,iVBOR" }] },
  { id: "t1", messages: [{ role: "user", parts: [{ type: "text", text: "Hi" }] }], trigger: "submit-message" },
  { id: "t1", message: { role: "user", parts: [{ type: "text", text: "Hi" }] }, selectedChatModel: "mock-1" },
  { message: "Hi", mood: "friendly", stream: true },
];

// @ts-expect-error: no shape is only a threadId
const noShape: ChatSendInput = { threadId: "t1" };

const approval: ChatApproveInput = { runId: "run-1", threadId: "t1", approved: true, toolCallId: "call-1" };

// A UI stream's chunks narrow on `type`, as the AI SDK's do.
function textOf(chunks: UiChunk[]): string {
  let text = "";
  for (const chunk of chunks) {
    if (chunk.type === "text-delta") text += chunk.delta;
    else if (chunk.type === "error") throw new Error(chunk.errorText);
    // @ts-expect-error: there is no such chunk
    else if (chunk.type === "text-chunk") return "";
  }
  return text;
}

// A document's content, as the document tools stream it: transient `data-textDelta` parts, in order.
function documentText(chunks: UiChunk[]): string {
  let text = "";
  for (const chunk of chunks) {
    if (chunk.type === "data-textDelta" && typeof chunk.data === "string") text += chunk.data;
  }
  return text;
}

function plainText(events: PlainEvent[]): string {
  return events.map((e) => (e.type === "delta" ? e.text : "")).join("");
}

// Operations: their query parameters and answers.
type ListQuery = NonNullable<operations["listConversations"]["parameters"]["query"]>;
const query: ListQuery = { limit: 20, channel: "web", starting_after: "t0" };
type Listed = paths["/api/chat/conversations"]["get"]["responses"]["200"]["content"]["application/json"];
const firstTitle = (page: Listed): string | null | undefined => page.conversations[0]?.title;
type Refused = operations["sendMessage"]["responses"]["429"]["content"]["application/json"];
const retryAfter = (error: Refused): number | null | undefined => error.retryAfter;
const messagesOf = (page: MessagePage): string[] => page.messages.map((m) => m.role);
const apiError: ApiError = { error: "unauthorized" };
const sameShape = (page: ConversationPage): Listed => page;

export { apiError, approval, documentText, noShape, firstTitle, messagesOf, plainText, query, retryAfter, sameShape, shapes, textOf };
