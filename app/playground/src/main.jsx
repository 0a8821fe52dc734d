// The playground: one page on the standalone server (`/`), chatting through our routes with the AI SDK's
// `useChat` (@ai-sdk/react). Bundled by build.mjs (esbuild) into ../static/app.js; nothing comes from a CDN.
//
// - the conversation list (GET /api/chat/conversations) and a model picker (GET /api/models);
// - a conversation's stored messages (GET /api/chat/messages), then `useChat` with `resume: true`: a reload
//   in the middle of an answer reconnects to its stream (GET /api/chat/{id}/stream) and replays it whole;
// - text, reasoning, sources and tool parts with their states; approve or deny a tool call
//   (`addToolApprovalResponse`, the continuation is sent by itself);
// - stop (the fetch aborted, and POST /api/chat/{id}/stop so the run ends too), regenerate, errors.
//
// The token is the demo token unless `?token=` (kept in localStorage) says otherwise; `?c=<id>` opens a
// conversation. <body data-status> is the chat's status, for people and for tests/node/playground.mjs.

import { useChat } from '@ai-sdk/react';
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithApprovalResponses } from 'ai';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

const params = new URLSearchParams(location.search);
if (params.get('token')) localStorage.setItem('chatstream.token', params.get('token'));
const TOKEN = localStorage.getItem('chatstream.token') || 'demo-token';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...AUTH, ...(init.headers || {}) } });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body.error || `HTTP ${res.status}`);
  }
  return res.status === 204 ? null : res.json();
}

const newId = () => crypto.randomUUID();

function openConversation(id) {
  const url = new URL(location.href);
  url.searchParams.set('c', id);
  url.searchParams.delete('token');
  history.replaceState(null, '', url);
}

function App() {
  // `fresh`: a new conversation, nothing stored to load (and nothing to ask the server about).
  const [{ chatId, fresh }, setChat] = useState(() =>
    params.get('c') ? { chatId: params.get('c'), fresh: false } : { chatId: newId(), fresh: true },
  );
  const setChatId = (id) => setChat({ chatId: id, fresh: false });
  const [initial, setInitial] = useState(null);
  const [conversations, setConversations] = useState([]);
  const [models, setModels] = useState(null);
  const [model, setModel] = useState('');
  const [loadError, setLoadError] = useState(null);

  const refresh = useCallback(() => {
    api('/api/chat/conversations?limit=50')
      .then((page) => setConversations(page.conversations))
      .catch((e) => setLoadError(e.message));
  }, []);

  useEffect(() => {
    refresh();
    api('/api/models')
      .then((list) => {
        setModels(list);
        setModel(`${list.default.provider}/${list.default.model}`);
      })
      .catch((e) => setLoadError(e.message));
  }, [refresh]);

  // A conversation's stored messages first, then the chat (which resumes a running answer).
  useEffect(() => {
    let live = true;
    setInitial(null);
    openConversation(chatId);
    const loaded = (messages) => live && setInitial({ chatId, messages });
    if (fresh) {
      loaded([]);
      return undefined;
    }
    api(`/api/chat/messages?conversationId=${encodeURIComponent(chatId)}&limit=100`)
      .then((page) => loaded(page.messages.map(({ id, role, parts, metadata }) => ({ id, role, parts, metadata }))))
      .catch(() => loaded([])); // not stored (yet): a conversation that does not exist is a new one
    return () => {
      live = false;
    };
  }, [chatId, fresh]);

  return (
    <div className="layout">
      <aside>
        <button data-testid="new-chat" onClick={() => setChat({ chatId: newId(), fresh: true })}>
          New chat
        </button>
        <ul data-testid="conversations">
          {conversations.map((c) => (
            <li key={c.id} className={c.id === chatId ? 'current' : ''}>
              <a href={`?c=${c.id}`} data-id={c.id} onClick={(e) => (e.preventDefault(), setChatId(c.id))}>
                {c.title || 'New chat'}
              </a>
            </li>
          ))}
        </ul>
      </aside>
      <main>
        <header>
          <label>
            Model{' '}
            <select data-testid="model" value={model} onChange={(e) => setModel(e.target.value)}>
              {(models?.models || []).map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
          <span className="thread" data-testid="thread">
            {chatId}
          </span>
        </header>
        {loadError && <p className="error">{loadError}</p>}
        {initial?.chatId !== chatId ? (
          <p className="loading">Loading…</p>
        ) : (
          <Chat key={chatId} id={chatId} initial={initial.messages} model={model} onSettled={refresh} />
        )}
      </main>
    </div>
  );
}

function Chat({ id, initial, model, onSettled }) {
  const modelRef = useRef(model);
  modelRef.current = model;
  const transport = useMemo(
    () =>
      new DefaultChatTransport({
        api: '/api/chat',
        headers: () => AUTH,
        body: () => (modelRef.current ? { model: modelRef.current } : {}),
      }),
    [],
  );
  const { messages, sendMessage, status, error, stop, regenerate, addToolApprovalResponse, clearError } = useChat({
    id,
    messages: initial,
    transport,
    resume: true,
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses,
  });
  const [input, setInput] = useState('');
  const busy = status === 'submitted' || status === 'streaming';

  useEffect(() => {
    document.body.dataset.status = status;
    if (status === 'ready' || status === 'error') onSettled();
  }, [status, onSettled]);

  const submit = (e) => {
    e.preventDefault();
    if (!input.trim() || busy) return;
    clearError();
    sendMessage({ text: input });
    setInput('');
  };

  const stopAll = async () => {
    stop(); // the fetch
    await api(`/api/chat/${encodeURIComponent(id)}/stop`, { method: 'POST' }).catch(() => {}); // the run
  };

  return (
    <section className="chat">
      <ol className="messages" data-testid="messages">
        {messages.map((m) => (
          <li key={m.id} className={`message ${m.role}`} data-role={m.role} data-id={m.id}>
            {m.parts.map((part, i) => (
              <Part key={i} part={part} onDecide={addToolApprovalResponse} />
            ))}
          </li>
        ))}
      </ol>
      {error && (
        <p className="error" data-testid="error">
          {error.message}
        </p>
      )}
      <form onSubmit={submit}>
        <textarea
          data-testid="input"
          value={input}
          placeholder="Message (the mock provider obeys mock:tokens=50, mock:reasoning, …)"
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={(e) => e.key === 'Enter' && !e.shiftKey && submit(e)}
        />
        <div className="actions">
          <button type="submit" data-testid="send" disabled={busy}>
            Send
          </button>
          <button type="button" data-testid="stop" disabled={!busy} onClick={stopAll}>
            Stop
          </button>
          <button
            type="button"
            data-testid="regenerate"
            disabled={busy || !messages.some((m) => m.role === 'assistant')}
            onClick={() => (clearError(), regenerate())}
          >
            Regenerate
          </button>
          <span className="status" data-testid="status">
            {status}
          </span>
        </div>
      </form>
    </section>
  );
}

function Part({ part, onDecide }) {
  if (part.type === 'text') return <div className="text">{part.text}</div>;
  if (part.type === 'reasoning')
    return (
      <details className="reasoning" open={part.state === 'streaming'}>
        <summary>Reasoning</summary>
        {part.text}
      </details>
    );
  if (part.type === 'source-url')
    return (
      <a className="source" href={part.url} target="_blank" rel="noreferrer">
        {part.title || part.url}
      </a>
    );
  if (part.type === 'file') return <div className="file">{part.filename || part.mediaType}</div>;
  if (part.type.startsWith('tool-') || part.type === 'dynamic-tool') {
    const name = part.type === 'dynamic-tool' ? part.toolName : part.type.slice(5);
    return (
      <div className="tool" data-testid="tool" data-state={part.state}>
        <div>
          <b>{name}</b> <span className="state">{part.state}</span>
        </div>
        {part.input !== undefined && <pre className="input">{JSON.stringify(part.input)}</pre>}
        {part.state === 'approval-requested' && (
          <div className="approval">
            <button data-testid="approve" onClick={() => onDecide({ id: part.approval.id, approved: true })}>
              Approve
            </button>
            <button data-testid="deny" onClick={() => onDecide({ id: part.approval.id, approved: false })}>
              Deny
            </button>
          </div>
        )}
        {part.state === 'output-available' && <pre className="output">{JSON.stringify(part.output)}</pre>}
        {part.state === 'output-error' && <pre className="output error">{part.errorText}</pre>}
        {part.state === 'output-denied' && <div className="output">denied</div>}
      </div>
    );
  }
  return null; // step-start, data parts: nothing to show
}

createRoot(document.getElementById('root')).render(<App />);
