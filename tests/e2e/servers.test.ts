/**
 * Self-tests of the scripted model servers (no agent CLI needed, always run): SSE framing, tool
 * calls, non-streaming answers, errors, probes, script errors, clean close.
 */
import { Agent, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  startAnthropicServer,
  toolResults,
  toolResultText,
  type AnthropicRequestBody,
} from './support/anthropic-server.js';
import { functionOutputs, startResponsesServer, type ResponsesRequestBody } from './support/responses-server.js';

interface SseEvent {
  event: string | null;
  data: Record<string, unknown>;
}

function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const frame of text.split('\n\n')) {
    if (frame.trim() === '') continue;
    let event: string | null = null;
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    out.push({ event, data: JSON.parse(data.join('\n')) as Record<string, unknown> });
  }
  return out;
}

const post = (url: string, body: unknown): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

const anthropicBody = (extra: Partial<AnthropicRequestBody> = {}): AnthropicRequestBody => ({
  model: 'm',
  max_tokens: 100,
  stream: true,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

describe('scripted Anthropic Messages server', () => {
  it('streams a text reply with the full event sequence', async () => {
    const server = await startAnthropicServer(() => 'x'.repeat(95));
    try {
      const res = await post(`${server.baseUrl}/v1/messages?beta=true`, anthropicBody());
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const events = parseSse(await res.text());
      for (const e of events) expect(e.event).toBe(e.data.type);
      const types = events.map((e) => e.event);
      expect(types[0]).toBe('message_start');
      expect(types.slice(-2)).toEqual(['message_delta', 'message_stop']);
      expect(types).toContain('content_block_start');
      expect(types).toContain('content_block_stop');
      const text = events
        .filter((e) => e.event === 'content_block_delta')
        .map((e) => (e.data.delta as { text: string }).text)
        .join('');
      expect(text).toBe('x'.repeat(95));
      expect((events.at(-2)!.data.delta as { stop_reason: string }).stop_reason).toBe('end_turn');
      expect(server.messageRequests).toHaveLength(1);
      expect(server.messageRequests[0]!.query).toEqual({ beta: 'true' });
    } finally {
      await server.close();
    }
  });

  it('streams several tool_use blocks after text; input_json_delta pieces rebuild the input', async () => {
    const big = { file_path: '/a/b.txt', note: 'y'.repeat(120) };
    const server = await startAnthropicServer(() => ({
      text: 'calling',
      toolCalls: [
        { tool: 'Read', input: big },
        { tool: 'Grep', input: { pattern: 'z' }, id: 'toolu_fixed' },
      ],
    }));
    try {
      const events = parseSse(await (await post(`${server.baseUrl}/v1/messages`, anthropicBody())).text());
      const starts = events.filter((e) => e.event === 'content_block_start').map((e) => e.data.content_block as Record<string, unknown>);
      expect(starts.map((b) => b.type)).toEqual(['text', 'tool_use', 'tool_use']);
      expect(starts[1]!.name).toBe('Read');
      expect(starts[2]!.id).toBe('toolu_fixed');
      expect(String(starts[1]!.id)).toMatch(/^toolu_/);
      const json = events
        .filter((e) => e.event === 'content_block_delta' && e.data.index === 1)
        .map((e) => (e.data.delta as { partial_json: string }).partial_json)
        .join('');
      expect(JSON.parse(json)).toEqual(big);
      expect((events.at(-2)!.data.delta as { stop_reason: string }).stop_reason).toBe('tool_use');
    } finally {
      await server.close();
    }
  });

  it('answers stream:false with one message object; turn counts every request', async () => {
    const turns: number[] = [];
    const server = await startAnthropicServer((_b, turn) => {
      turns.push(turn);
      return turn === 0 ? { tool: 'Read', input: { file_path: 'f' } } : 'plain';
    });
    try {
      const a = (await (await post(`${server.baseUrl}/v1/messages`, anthropicBody({ stream: false }))).json()) as Record<string, unknown>;
      expect(a).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'tool_use' });
      expect(a.content).toEqual([{ type: 'tool_use', id: expect.any(String), name: 'Read', input: { file_path: 'f' } }]);
      const b = (await (await post(`${server.baseUrl}/v1/messages`, anthropicBody({ stream: false }))).json()) as Record<string, unknown>;
      expect(b).toMatchObject({ stop_reason: 'end_turn', content: [{ type: 'text', text: 'plain' }] });
      expect(turns).toEqual([0, 1]);
    } finally {
      await server.close();
    }
  });

  it('sends scripted HTTP errors and mid-stream errors', async () => {
    const server = await startAnthropicServer((_b, turn) =>
      turn === 0
        ? { error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } }
        : { streamError: { type: 'overloaded_error', message: 'boom' } },
    );
    try {
      const r1 = await post(`${server.baseUrl}/v1/messages`, anthropicBody());
      expect(r1.status).toBe(529);
      expect(await r1.json()).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
      const r2 = await post(`${server.baseUrl}/v1/messages`, anthropicBody());
      expect(r2.status).toBe(200);
      const events = parseSse(await r2.text());
      expect(events.map((e) => e.event)).toEqual(['message_start', 'error']);
      // Non-streaming variant of a stream error becomes the matching HTTP error.
      const r3 = await post(`${server.baseUrl}/v1/messages`, anthropicBody({ stream: false }));
      expect(r3.status).toBe(529);
    } finally {
      await server.close();
    }
  });

  it('answers probes and unknown routes; records script errors as HTTP 500', async () => {
    const server = await startAnthropicServer(() => {
      throw new Error('assertion inside script');
    });
    try {
      expect((await fetch(server.baseUrl, { method: 'HEAD' })).status).toBe(200);
      expect((await fetch(`${server.baseUrl}/`)).status).toBe(200);
      expect((await fetch(`${server.baseUrl}/v1/models`)).status).toBe(200);
      expect((await fetch(`${server.baseUrl}/nope`)).status).toBe(404);
      const ct = (await (await post(`${server.baseUrl}/v1/messages/count_tokens`, anthropicBody())).json()) as { input_tokens: number };
      expect(ct.input_tokens).toBeGreaterThan(0);
      expect((await post(`${server.baseUrl}/v1/messages`, { nope: true })).status).toBe(400);
      expect((await post(`${server.baseUrl}/v1/messages`, anthropicBody())).status).toBe(500);
      expect(server.scriptErrors).toHaveLength(1);
      expect(() => server.assertNoScriptErrors()).toThrow('assertion inside script');
      expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        'HEAD /',
        'GET /',
        'GET /v1/models',
        'GET /nope',
        'POST /v1/messages/count_tokens',
        'POST /v1/messages',
        'POST /v1/messages',
      ]);
    } finally {
      await server.close();
    }
  });

  it('close() does not wait for idle keep-alive connections', async () => {
    const server = await startAnthropicServer(() => 'ok');
    await new Promise<void>((resolve, reject) => {
      const req = request(`${server.baseUrl}/`, { agent: new Agent({ keepAlive: true }) }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    const t0 = Date.now();
    await server.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    await server.close(); // idempotent
  });

  it('helpers read tool results in string and block form', () => {
    const body = anthropicBody({
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Read', input: {} }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 't1', content: 'one' },
            { type: 'tool_result', tool_use_id: 't2', content: [{ type: 'text', text: 'two' }] },
          ],
        },
      ],
    });
    expect(toolResults(body).map(toolResultText)).toEqual(['one', 'two']);
  });
});

describe('scripted Responses API server', () => {
  const body = (extra: Partial<ResponsesRequestBody> = {}): ResponsesRequestBody => ({
    model: 'gpt-x',
    stream: true,
    input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
    ...extra,
  });

  it('streams a message and a function_call, ending in response.completed with usage', async () => {
    const server = await startResponsesServer(() => ({
      text: 'thinking out loud',
      toolCalls: [{ tool: 'exec_command', input: { cmd: 'cat x' }, callId: 'call_1' }],
    }));
    try {
      const res = await post(`${server.baseUrl}/responses`, body());
      expect(res.status).toBe(200);
      const events = parseSse(await res.text());
      for (const e of events) expect(e.event).toBe(e.data.type);
      expect(events[0]!.event).toBe('response.created');
      const last = events.at(-1)!;
      expect(last.event).toBe('response.completed');
      const response = last.data.response as { status: string; output: unknown[]; usage: Record<string, unknown> };
      expect(response.status).toBe('completed');
      expect(response.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number) });
      const done = events.filter((e) => e.event === 'response.output_item.done').map((e) => e.data.item as Record<string, unknown>);
      expect(done[0]).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'thinking out loud' }] });
      expect(done[1]).toMatchObject({ type: 'function_call', call_id: 'call_1', name: 'exec_command', arguments: '{"cmd":"cat x"}' });
      expect(response.output).toEqual(done);
      const seqs = events.map((e) => e.data.sequence_number as number);
      expect(seqs).toEqual(seqs.map((_, i) => i));
    } finally {
      await server.close();
    }
  });

  it('sends HTTP errors and response.failed streams', async () => {
    const server = await startResponsesServer((_b, turn) =>
      turn === 0 ? { error: { status: 500, message: 'nope' } } : { failed: { code: 'server_error', message: 'mid' } },
    );
    try {
      const r1 = await post(`${server.baseUrl}/responses`, body());
      expect(r1.status).toBe(500);
      expect(await r1.json()).toMatchObject({ error: { message: 'nope', type: 'server_error' } });
      const events = parseSse(await (await post(`${server.baseUrl}/responses`, body())).text());
      expect(events.at(-1)).toMatchObject({ event: 'response.failed', data: { response: { status: 'failed', error: { message: 'mid' } } } });
      expect(server.responseRequests).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('functionOutputs reads string and content-array outputs', () => {
    const b = body({
      input: [
        { type: 'function_call_output', call_id: 'a', output: 'plain' },
        { type: 'function_call_output', call_id: 'b', output: [{ type: 'input_text', text: 'x' }, { type: 'input_text', text: 'y' }] },
        { type: 'custom_tool_call_output', call_id: 'c', output: 'patched' },
      ],
    });
    expect(functionOutputs(b).map((o) => `${o.callId}=${o.output}`)).toEqual(['a=plain', 'b=xy', 'c=patched']);
  });
});
