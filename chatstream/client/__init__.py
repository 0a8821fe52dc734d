"""The typed Python client: `AsyncChatClient` (and `ChatClient` for code without an event loop).

```python
from chatstream.client import AsyncChatClient

async with AsyncChatClient("http://127.0.0.1:8000", token="demo-token") as client:
    async for chunk in client.send("Hello"):
        print(chunk)
```

Answers arrive as the chunks of `chatstream.protocol.chunks` (plain events of `chatstream.protocol.bodies`
for the plain shape) and resume by themselves when the connection drops; JSON answers decode into the
Structs of `chatstream.protocol.bodies`; refusals raise the errors of `chatstream.client.errors`.
"""

from __future__ import annotations

from chatstream.client._async import AsyncChatClient
from chatstream.client._stream import ChatStream, RetryPolicy
from chatstream.client._sync import ChatClient, SyncChatStream
from chatstream.client.errors import (
    AuthenticationError,
    BadRequestError,
    ChatAPIError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamLostError,
    UnprocessableEntityError,
)
from chatstream.client.inputs import (
    ChatApproveInput,
    ChatSendChatbot,
    ChatSendInput,
    ChatSendParts,
    ChatSendPlain,
    ChatSendTransport,
    ContentPart,
    FilePart,
    TextPart,
    UIMessage,
)

__all__ = [
    "AsyncChatClient",
    "AuthenticationError",
    "BadRequestError",
    "ChatAPIError",
    "ChatApproveInput",
    "ChatClient",
    "ChatSendChatbot",
    "ChatSendInput",
    "ChatSendParts",
    "ChatSendPlain",
    "ChatSendTransport",
    "ChatStream",
    "ConflictError",
    "ContentPart",
    "FilePart",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "StreamLostError",
    "SyncChatStream",
    "TextPart",
    "UIMessage",
    "UnprocessableEntityError",
]
