/**
 * A scripted OpenAI Responses API server for driving the real `codex exec` (and Pi with
 * `api: openai-responses`) offline.
 *
 *   const server = await startResponsesServer((body, turn) =>
 *     turn === 0 ? { tool: 'exec_command', input: { cmd: 'cat notes.txt' } } : 'done');
 *   // codex: model_providers.x.base_url = server.baseUrl   (ends in /v1)
 *
 * `turn` counts POST /v1/responses requests from 0. Every request is recorded.
 */
import type { ServerResponse } from 'node:http';
import { fakeId, sendJson, startBaseServer, startSse, type BaseServer, type RecordedRequest } from './http-util.js';

export interface ResponsesToolCall {
  /** Function name (`exec_command`, `shell`, an MCP tool name, …). */
  tool: string;
  /** Arguments; an object is JSON-encoded into the `arguments` string. */
  input: Record<string, unknown> | string;
  callId?: string;
  /** For namespaced (MCP) tools, e.g. `mcp__fanfold`. */
  namespace?: string;
}

export interface ResponsesTurn {
  text?: string;
  toolCalls?: ResponsesToolCall[];
  /** Raw output items appended after text and tool calls (e.g. `custom_tool_call`, `reasoning`). */
  items?: Array<Record<string, unknown>>;
  usage?: { input_tokens?: number; output_tokens?: number; cached_tokens?: number };
}

/**
 * HTTP error answer: body `{error:{message,type,code,param}}`, plus `fields` merged into `error`
 * (e.g. `resets_in_seconds` of a `usage_limit_reached` error, which codex turns into its wording).
 */
export interface ResponsesHttpError {
  error: { status: number; message: string; type?: string; code?: string | null; fields?: Record<string, unknown> };
  headers?: Record<string, string>;
}

/** A 200 SSE stream that ends in `response.failed`. */
export interface ResponsesFailed {
  failed: { code: string; message: string };
}

export type ResponsesReply = string | ResponsesToolCall | ResponsesTurn | ResponsesHttpError | ResponsesFailed;

export interface ResponsesInputItem {
  type?: string;
  role?: string;
  content?: unknown;
  call_id?: string;
  name?: string;
  arguments?: string;
  output?: unknown;
  [k: string]: unknown;
}

export interface ResponsesRequestBody {
  model: string;
  instructions?: string;
  input: ResponsesInputItem[];
  tools?: Array<{ type: string; name?: string; [k: string]: unknown }>;
  stream?: boolean;
  text?: { format?: { type: string; name?: string; schema?: unknown; strict?: boolean }; [k: string]: unknown };
  [k: string]: unknown;
}

export type ResponsesScript = (
  body: ResponsesRequestBody,
  turn: number,
  req: RecordedRequest,
) => ResponsesReply | Promise<ResponsesReply>;

export interface ResponsesServer extends BaseServer {
  /** `http://127.0.0.1:<port>/v1` — what codex's `base_url` / Pi's `baseUrl` want. */
  baseUrl: string;
  /** The POST /v1/responses requests only (index = turn). */
  responseRequests: RecordedRequest[];
}

export async function startResponsesServer(script: ResponsesScript, opts: { log?: boolean } = {}): Promise<ResponsesServer> {
  const responseRequests: RecordedRequest[] = [];
  const base = await startBaseServer(
    async (req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200).end();
        return;
      }
      if (req.method === 'POST' && req.path === '/v1/responses') {
        const turn = responseRequests.length;
        responseRequests.push(req);
        const body = req.body as ResponsesRequestBody;
        if (!body || typeof body !== 'object' || !Array.isArray(body.input)) {
          sendJson(res, 400, { error: { message: 'input: required', type: 'invalid_request_error', code: null, param: 'input' } });
          return;
        }
        respond(res, body, await script(body, turn, req));
        return;
      }
      if (req.method === 'GET' && req.path === '/v1/models') {
        // OpenAI list shape; codex's own catalogue format (`models: [...]`) is not needed offline.
        sendJson(res, 200, { object: 'list', data: [{ id: 'gpt-5.5', object: 'model', created: 0, owned_by: 'scripted' }] });
        return;
      }
      if (req.method === 'GET' && (req.path === '/' || req.path === '/health' || req.path === '/v1')) {
        sendJson(res, 200, { ok: true });
        return;
      }
      sendJson(res, 404, { error: { message: `no route ${req.method} ${req.path}`, type: 'invalid_request_error', code: 'not_found', param: null } });
    },
    { name: 'responses', ...(opts.log === undefined ? {} : { log: opts.log }) },
  );
  return { ...base, baseUrl: `${base.origin}/v1`, responseRequests };
}

function buildOutput(reply: string | ResponsesToolCall | ResponsesTurn): Array<Record<string, unknown>> {
  const turn: ResponsesTurn = typeof reply === 'string' ? { text: reply } : 'tool' in reply ? { toolCalls: [reply] } : reply;
  const items: Array<Record<string, unknown>> = [];
  if (turn.text !== undefined) {
    items.push({
      type: 'message',
      id: fakeId('msg_'),
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: turn.text, annotations: [] }],
    });
  }
  for (const call of turn.toolCalls ?? []) {
    items.push({
      type: 'function_call',
      id: fakeId('fc_'),
      status: 'completed',
      call_id: call.callId ?? fakeId('call_'),
      name: call.tool,
      ...(call.namespace ? { namespace: call.namespace } : {}),
      arguments: typeof call.input === 'string' ? call.input : JSON.stringify(call.input),
    });
  }
  for (const item of turn.items ?? []) items.push({ id: fakeId('item_'), ...item });
  return items;
}

function respond(res: ServerResponse, body: ResponsesRequestBody, reply: ResponsesReply): void {
  const requestId = fakeId('req_');
  if (typeof reply === 'object' && 'error' in reply) {
    sendJson(
      res,
      reply.error.status,
      { error: { message: reply.error.message, type: reply.error.type ?? 'server_error', code: reply.error.code ?? null, param: null, ...(reply.error.fields ?? {}) } },
      { 'x-request-id': requestId, ...(reply.headers ?? {}) },
    );
    return;
  }
  const responseId = fakeId('resp_');
  const model = body.model || 'gpt-5.5';
  const created = Math.floor(Date.now() / 1000);
  const shell = (status: string, output: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    id: responseId,
    object: 'response',
    created_at: created,
    status,
    model,
    output,
    ...extra,
  });
  let seq = 0;
  const sse = startSse(res, { 'x-request-id': requestId });
  const emit = (type: string, data: Record<string, unknown>): void => sse.event(type, { type, sequence_number: seq++, ...data });

  emit('response.created', { response: shell('in_progress', []) });
  emit('response.in_progress', { response: shell('in_progress', []) });

  if (typeof reply === 'object' && 'failed' in reply) {
    emit('response.failed', { response: shell('failed', [], { error: reply.failed }) });
    sse.end();
    return;
  }

  const turn: ResponsesTurn | undefined = typeof reply === 'object' && !('tool' in reply) ? reply : undefined;
  const output = buildOutput(reply);
  output.forEach((item, outputIndex) => {
    if (item.type === 'message') {
      emit('response.output_item.added', { output_index: outputIndex, item: { ...item, status: 'in_progress', content: [] } });
      const text = ((item.content as Array<{ text: string }>)[0]?.text ?? '') as string;
      emit('response.content_part.added', {
        item_id: item.id,
        output_index: outputIndex,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [] },
      });
      for (let i = 0; i < Math.max(1, text.length); i += 40) {
        emit('response.output_text.delta', {
          item_id: item.id,
          output_index: outputIndex,
          content_index: 0,
          delta: text.slice(i, i + 40),
        });
      }
      emit('response.output_text.done', { item_id: item.id, output_index: outputIndex, content_index: 0, text });
      emit('response.content_part.done', {
        item_id: item.id,
        output_index: outputIndex,
        content_index: 0,
        part: { type: 'output_text', text, annotations: [] },
      });
    } else if (item.type === 'function_call') {
      emit('response.output_item.added', { output_index: outputIndex, item: { ...item, status: 'in_progress', arguments: '' } });
      emit('response.function_call_arguments.delta', { item_id: item.id, output_index: outputIndex, delta: item.arguments });
      emit('response.function_call_arguments.done', { item_id: item.id, output_index: outputIndex, arguments: item.arguments });
    } else {
      emit('response.output_item.added', { output_index: outputIndex, item });
    }
    emit('response.output_item.done', { output_index: outputIndex, item });
  });

  const inputTokens = turn?.usage?.input_tokens ?? Math.ceil(JSON.stringify(body.input).length / 4);
  const outputTokens = turn?.usage?.output_tokens ?? Math.max(1, Math.ceil(JSON.stringify(output).length / 4));
  emit('response.completed', {
    response: shell('completed', output, {
      usage: {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: turn?.usage?.cached_tokens ?? 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: inputTokens + outputTokens,
      },
    }),
  });
  sse.end();
}

// ---------- helpers for scripts and assertions ----------

/** Outputs of the function_call_output / custom_tool_call_output items in the request, in order. */
export function functionOutputs(body: ResponsesRequestBody): Array<{ callId: string; output: string; type: string }> {
  const out: Array<{ callId: string; output: string; type: string }> = [];
  for (const item of body.input) {
    if (item.type !== 'function_call_output' && item.type !== 'custom_tool_call_output') continue;
    out.push({ callId: String(item.call_id ?? ''), output: outputText(item.output), type: item.type });
  }
  return out;
}

function outputText(o: unknown): string {
  if (typeof o === 'string') return o;
  if (Array.isArray(o)) return o.map((p) => (p && typeof p === 'object' && 'text' in p ? String((p as { text: unknown }).text) : '')).join('');
  if (o && typeof o === 'object' && 'content' in o) return outputText((o as { content: unknown }).content);
  return o === undefined ? '' : JSON.stringify(o);
}

/** Text of all user-role messages in the input. */
export function userInputText(body: ResponsesRequestBody): string {
  return body.input
    .filter((i) => i.role === 'user')
    .map((i) => outputText(i.content))
    .join('\n');
}

export function responsesToolNames(body: ResponsesRequestBody): string[] {
  return (body.tools ?? []).map((t) => t.name ?? t.type);
}
