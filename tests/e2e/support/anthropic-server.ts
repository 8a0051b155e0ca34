/**
 * A scripted Anthropic Messages API server for driving the real `claude` CLI (and Pi with
 * `api: anthropic-messages`) offline.
 *
 *   const server = await startAnthropicServer((body, turn) =>
 *     turn === 0 ? { tool: 'Read', input: { file_path: '/x' } } : 'done');
 *   // ANTHROPIC_BASE_URL = server.origin
 *
 * `turn` counts POST /v1/messages requests (streaming or not) from 0. Every request is recorded.
 */
import type { ServerResponse } from 'node:http';
import { fakeId, sendJson, startBaseServer, startSse, type BaseServer, type RecordedRequest } from './http-util.js';

export interface AnthropicToolCall {
  tool: string;
  input: Record<string, unknown>;
  /** tool_use id; generated when absent. */
  id?: string;
}

export interface AnthropicTurn {
  text?: string;
  toolCalls?: AnthropicToolCall[];
  /** Defaults to `tool_use` when there are tool calls, else `end_turn`. */
  stopReason?: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence' | 'refusal';
  usage?: { input_tokens?: number; output_tokens?: number };
}

/** An HTTP error answer, e.g. `{ error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } }`. */
export interface AnthropicHttpError {
  error: { status: number; type: string; message: string };
  headers?: Record<string, string>;
}

/** An `event: error` frame inside a 200 SSE stream (after message_start). Asked without
 *  streaming (claude retries a failed stream once with `stream: false`), the same error is sent as an
 *  HTTP error (status from ERROR_STATUS). */
export interface AnthropicStreamError {
  streamError: { type: string; message: string };
}

export type AnthropicReply = string | AnthropicToolCall | AnthropicTurn | AnthropicHttpError | AnthropicStreamError;

export interface AnthropicContentBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  tool_use_id?: string;
  content?: unknown;
  is_error?: boolean;
  [k: string]: unknown;
}

export interface AnthropicMessage {
  role: string;
  content: string | AnthropicContentBlock[];
}

export interface AnthropicRequestBody {
  model: string;
  messages: AnthropicMessage[];
  system?: string | AnthropicContentBlock[];
  tools?: Array<{ name: string; description?: string; input_schema?: unknown; [k: string]: unknown }>;
  stream?: boolean;
  max_tokens?: number;
  [k: string]: unknown;
}

export type AnthropicScript = (
  body: AnthropicRequestBody,
  turn: number,
  req: RecordedRequest,
) => AnthropicReply | Promise<AnthropicReply>;

export interface AnthropicServer extends BaseServer {
  /** Base URL for ANTHROPIC_BASE_URL (no `/v1`). */
  baseUrl: string;
  /** The POST /v1/messages requests only, in order (index = turn). */
  messageRequests: RecordedRequest[];
}

export async function startAnthropicServer(script: AnthropicScript, opts: { log?: boolean } = {}): Promise<AnthropicServer> {
  const messageRequests: RecordedRequest[] = [];
  const base = await startBaseServer(
    async (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200).end();
        return;
      }
      if (req.method === 'POST' && req.path === '/v1/messages') {
        const turn = messageRequests.length;
        messageRequests.push(req);
        const body = req.body as AnthropicRequestBody;
        if (!body || typeof body !== 'object' || !Array.isArray(body.messages)) {
          sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'messages: required' } });
          return;
        }
        const reply = await script(body, turn, req);
        respond(res, body, reply);
        return;
      }
      if (req.method === 'POST' && req.path === '/v1/messages/count_tokens') {
        sendJson(res, 200, { input_tokens: Math.ceil(req.rawBody.length / 4) });
        return;
      }
      if (req.method === 'GET' && (req.path === '/' || req.path === '/health')) {
        sendJson(res, 200, { ok: true });
        return;
      }
      if (req.method === 'GET' && req.path === '/v1/models') {
        sendJson(res, 200, {
          data: [{ type: 'model', id: 'claude-scripted', display_name: 'Scripted', created_at: '2025-01-01T00:00:00Z' }],
          has_more: false,
          first_id: 'claude-scripted',
          last_id: 'claude-scripted',
        });
        return;
      }
      sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no route ${req.method} ${req.path}` } });
    },
    { name: 'anthropic', ...(opts.log === undefined ? {} : { log: opts.log }) },
  );
  return { ...base, baseUrl: base.origin, messageRequests };
}

interface NormalTurn {
  blocks: AnthropicContentBlock[];
  stopReason: string;
  usage: { input_tokens: number; output_tokens: number };
}

function normalize(body: AnthropicRequestBody, reply: AnthropicTurn | AnthropicToolCall | string): NormalTurn {
  const turn: AnthropicTurn =
    typeof reply === 'string' ? { text: reply } : 'tool' in reply ? { toolCalls: [reply] } : reply;
  const blocks: AnthropicContentBlock[] = [];
  if (turn.text !== undefined) blocks.push({ type: 'text', text: turn.text });
  for (const call of turn.toolCalls ?? []) {
    blocks.push({ type: 'tool_use', id: call.id ?? fakeId('toolu_'), name: call.tool, input: call.input });
  }
  if (blocks.length === 0) blocks.push({ type: 'text', text: '' });
  const hasTools = (turn.toolCalls?.length ?? 0) > 0;
  const approxIn = Math.ceil(JSON.stringify(body.messages).length / 4);
  return {
    blocks,
    stopReason: turn.stopReason ?? (hasTools ? 'tool_use' : 'end_turn'),
    usage: {
      input_tokens: turn.usage?.input_tokens ?? approxIn,
      output_tokens: turn.usage?.output_tokens ?? Math.max(1, Math.ceil(JSON.stringify(blocks).length / 4)),
    },
  };
}

function respond(res: ServerResponse, body: AnthropicRequestBody, reply: AnthropicReply): void {
  const requestId = fakeId('req_');
  if (typeof reply === 'object' && 'error' in reply) {
    sendJson(
      res,
      reply.error.status,
      { type: 'error', error: { type: reply.error.type, message: reply.error.message }, request_id: requestId },
      { 'request-id': requestId, ...(reply.headers ?? {}) },
    );
    return;
  }
  const msgId = fakeId('msg_');
  const model = body.model || 'claude-scripted';
  if (typeof reply === 'object' && 'streamError' in reply) {
    if (body.stream !== true) {
      // A non-streaming request cannot fail mid-stream: answer with the matching HTTP error.
      sendJson(
        res,
        ERROR_STATUS[reply.streamError.type] ?? 500,
        { type: 'error', error: reply.streamError, request_id: requestId },
        { 'request-id': requestId },
      );
      return;
    }
    const sse = startSse(res, { 'request-id': requestId });
    sse.event('message_start', {
      type: 'message_start',
      message: emptyMessage(msgId, model, { input_tokens: 1, output_tokens: 0 }),
    });
    sse.event('error', { type: 'error', error: reply.streamError });
    sse.end();
    return;
  }
  const turn = normalize(body, reply);
  if (body.stream !== true) {
    sendJson(
      res,
      200,
      {
        id: msgId,
        type: 'message',
        role: 'assistant',
        model,
        content: turn.blocks,
        stop_reason: turn.stopReason,
        stop_sequence: null,
        usage: { ...turn.usage, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
      { 'request-id': requestId },
    );
    return;
  }
  const sse = startSse(res, { 'request-id': requestId });
  sse.event('message_start', {
    type: 'message_start',
    message: emptyMessage(msgId, model, { input_tokens: turn.usage.input_tokens, output_tokens: 1 }),
  });
  sse.event('ping', { type: 'ping' });
  turn.blocks.forEach((block, index) => {
    if (block.type === 'text') {
      sse.event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      for (const piece of chunk(block.text ?? '', 40)) {
        sse.event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
      }
    } else {
      sse.event('content_block_start', {
        type: 'content_block_start',
        index,
        content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
      });
      for (const piece of chunk(JSON.stringify(block.input ?? {}), 40)) {
        sse.event('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: piece },
        });
      }
    }
    sse.event('content_block_stop', { type: 'content_block_stop', index });
  });
  sse.event('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: turn.stopReason, stop_sequence: null },
    usage: { output_tokens: turn.usage.output_tokens },
  });
  sse.event('message_stop', { type: 'message_stop' });
  sse.end();
}

/** HTTP status Anthropic uses for each error type. */
export const ERROR_STATUS: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

function emptyMessage(id: string, model: string, usage: { input_tokens: number; output_tokens: number }): unknown {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { ...usage, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
}

function chunk(text: string, size: number): string[] {
  if (text === '') return [''];
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

// ---------- helpers for scripts and assertions ----------

/** Text of a tool_result's content (string or list of text blocks). */
export function toolResultText(block: AnthropicContentBlock): string {
  const c = block.content;
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    return c
      .map((b: unknown) => (b && typeof b === 'object' && 'text' in b ? String((b as { text: unknown }).text) : ''))
      .join('');
  }
  return '';
}

/** All tool_result blocks in the request's messages (all user turns), in order. */
export function toolResults(body: AnthropicRequestBody): AnthropicContentBlock[] {
  const out: AnthropicContentBlock[] = [];
  for (const m of body.messages) {
    if (m.role !== 'user' || typeof m.content === 'string') continue;
    for (const b of m.content) if (b.type === 'tool_result') out.push(b);
  }
  return out;
}

/** Concatenated text of every user message (string or text blocks). */
export function userText(body: AnthropicRequestBody): string {
  return body.messages
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : m.content.map((b) => b.text ?? '').join('\n')))
    .join('\n');
}

export function toolNames(body: AnthropicRequestBody): string[] {
  return (body.tools ?? []).map((t) => t.name);
}
