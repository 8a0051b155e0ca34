/**
 * The persisted index, `<run dir>/index.json`: a versioned envelope around the packed index
 * (packed.ts), checked field by field when read (anything off is a reason to rebuild, never an
 * error), written and read in slices so a large index does not block the event loop.
 *
 * The big parts are strings (the sorted terms joined by newlines, the postings in base64 pieces):
 * parsing a string is a copy, where minisearch's JSON (index schema 1) spelled every posting as an
 * object key and cost seconds to parse and rebuild at 10,000 outputs.
 */
import { StoreError, readBytesFile, writeChunksAtomic } from '../store/index.js';
import type { AgentStatus } from '../store/types.js';
import { AGENT_STATUSES } from '../store/types.js';
import { ANALYZER_VERSION } from './analyze.js';
import { FIELDS } from './documents.js';
import type { PackedData } from './packed.js';

/** `kind` of a persisted search index envelope. */
export const SEARCH_INDEX_KIND = 'fanfold.search-index';

/**
 * Version of index.json's own schema. 1: minisearch's JSON with each output's text (read no
 * more: such a file is rebuilt, transparently); 2: the packed index, no output text.
 */
export const INDEX_SCHEMA_VERSION = 2 as const;

/** `format` of the envelope's index part. */
export const INDEX_FORMAT = 'packed-1';

/**
 * Largest index.json read back. A packed index is ~0.3× the outputs it covers; beyond this the
 * file is treated as unusable and the index rebuilt in memory.
 */
export const MAX_INDEX_BYTES = 1024 * 1024 * 1024;

/** Bytes of postings per base64 piece (a multiple of 3, so pieces concatenate). */
const PIECE_BYTES = 3 * 512 * 1024;

/** The persisted `index.json`. */
export interface SearchIndexEnvelope {
  /** index.json's schema version (INDEX_SCHEMA_VERSION). */
  schemaVersion: typeof INDEX_SCHEMA_VERSION;
  kind: typeof SEARCH_INDEX_KIND;
  format: typeof INDEX_FORMAT;
  /** Tokenizer/fields version (analyze.ts); another value means the terms mean something else. */
  analyzer: string;
  /** Run the index belongs to; an index copied from another run is rebuilt. */
  runId: string;
  /** Number of documents (tasks). */
  docCount: number;
  /** Field names by field id. */
  fields: string[];
  avgFieldLength: number[];
  /** Per document: `<phaseId>/<taskId>`, attempt, status, indexedBytes (0: whole output). */
  refs: string[];
  attempts: number[];
  statuses: string[];
  indexedBytes: number[];
  /** base64 of little-endian uint32: field lengths, docCount × fields. */
  fieldLength: string;
  /** Sorted terms, joined by `\n` (terms never hold whitespace). */
  terms: string;
  /** base64 of little-endian uint32: start of each term's postings, then their end. */
  offsets: string;
  /** base64 pieces of the varint postings (see packed.ts). */
  postings: string[];
}

function uint32Base64(values: Uint32Array): string {
  const buf = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) buf.writeUInt32LE(values[i]!, i * 4);
  return buf.toString('base64');
}

function base64Uint32(text: string, name: string): Uint32Array {
  const buf = Buffer.from(text, 'base64');
  if (buf.length % 4 !== 0) throw new Error(`${name} is not a whole number of uint32`);
  const out = new Uint32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readUInt32LE(i * 4);
  return out;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isUintArray = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && (x as number) >= 0);

/**
 * Reads and checks index.json; returns the packed index or why it cannot be used (missing,
 * unreadable, corrupt, another version, analyzer or run). Yields to the event loop between the
 * decoding of the postings' pieces.
 */
export async function readIndexFile(
  file: string,
  runId: string,
  pause: () => Promise<void>,
): Promise<{ data: PackedData; fileBytes: number } | { reason: string }> {
  let bytes: Buffer;
  try {
    bytes = await readBytesFile(file, 'search index', MAX_INDEX_BYTES);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    return { reason: err.code === 'not_found' ? 'missing' : `unreadable: ${err.message}` };
  }
  const fileBytes = bytes.length;
  let value: unknown;
  let pieces: Buffer[] | undefined;
  try {
    ({ value, pieces } = await parseEnvelope(bytes, pause));
  } catch (err) {
    return { reason: `corrupt: ${(err as Error).message}` };
  }
  await pause();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { reason: 'corrupt: not a JSON object' };
  const env = value as Partial<SearchIndexEnvelope>;
  if (env.kind !== SEARCH_INDEX_KIND) return { reason: `corrupt: kind ${JSON.stringify(env.kind)}` };
  if (env.schemaVersion !== INDEX_SCHEMA_VERSION) return { reason: `schemaVersion ${String(env.schemaVersion)} ≠ ${INDEX_SCHEMA_VERSION}` };
  if (env.format !== INDEX_FORMAT) return { reason: `format ${JSON.stringify(env.format)} ≠ ${INDEX_FORMAT}` };
  if (env.analyzer !== ANALYZER_VERSION) return { reason: `analyzer ${String(env.analyzer)} ≠ ${ANALYZER_VERSION}` };
  if (env.runId !== runId) return { reason: `belongs to run ${JSON.stringify(env.runId)}` };
  const n = env.docCount;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return { reason: 'corrupt: docCount' };
  if (!isStringArray(env.fields) || env.fields.join() !== FIELDS.join()) return { reason: `corrupt: fields ${JSON.stringify(env.fields)}` };
  if (!Array.isArray(env.avgFieldLength) || env.avgFieldLength.length !== FIELDS.length || !env.avgFieldLength.every((x) => typeof x === 'number')) {
    return { reason: 'corrupt: avgFieldLength' };
  }
  if (Array.isArray(env.refs) && env.refs.length !== n) return { reason: `corrupt: docCount ${n} but index holds ${env.refs.length}` };
  if (!isStringArray(env.refs) || !env.refs.every((r) => r.includes('/'))) return { reason: 'corrupt: refs' };
  if (!isUintArray(env.attempts) || env.attempts.length !== n) return { reason: 'corrupt: attempts' };
  if (!isStringArray(env.statuses) || env.statuses.length !== n || !env.statuses.every((s) => (AGENT_STATUSES as readonly string[]).includes(s))) {
    return { reason: 'corrupt: statuses' };
  }
  if (!isUintArray(env.indexedBytes) || env.indexedBytes.length !== n) return { reason: 'corrupt: indexedBytes' };
  if (pieces !== undefined) env.postings = [];
  if (typeof env.fieldLength !== 'string' || typeof env.terms !== 'string' || typeof env.offsets !== 'string' || !isStringArray(env.postings)) {
    return { reason: 'corrupt: fieldLength, terms, offsets or postings' };
  }
  try {
    const fieldLength = base64Uint32(env.fieldLength, 'fieldLength');
    if (fieldLength.length !== n * FIELDS.length) return { reason: 'corrupt: fieldLength' };
    const terms = env.terms === '' ? [] : env.terms.split('\n');
    const offsets = base64Uint32(env.offsets, 'offsets');
    await pause();
    const decoded: Buffer[] = pieces ?? [];
    for (const piece of env.postings) {
      decoded.push(Buffer.from(piece, 'base64'));
      await pause();
    }
    const postings: Uint8Array = decoded.length === 1 ? decoded[0]! : Buffer.concat(decoded);
    if (offsets.length !== terms.length + 1 || offsets[terms.length] !== postings.length) return { reason: 'corrupt: offsets' };
    for (let i = 0; i < terms.length; i++) if (offsets[i]! > offsets[i + 1]!) return { reason: 'corrupt: offsets' };
    return {
      fileBytes,
      data: {
        fields: env.fields,
        avgFieldLength: env.avgFieldLength,
        refs: env.refs,
        attempts: env.attempts,
        statuses: env.statuses as AgentStatus[],
        indexedBytes: env.indexedBytes,
        fieldLength,
        terms,
        offsets,
        postings,
      },
    };
  } catch (err) {
    return { reason: `corrupt: ${(err as Error).message}` };
  }
}

/** What `indexFileChunks` writes before the postings' pieces, between two of them, and after. */
const POSTINGS_START = Buffer.from(',"postings":["');
const PIECE_SEPARATOR = Buffer.from('","');
const POSTINGS_END = Buffer.from('"]}');

/** Bytes a base64 text of `chars` characters decodes to, `=` padding and all. */
function base64Bytes(piece: Buffer, from: number, to: number): number {
  let pad = 0;
  if (to > from && piece[to - 1] === 0x3d) pad++;
  if (to - 1 > from && piece[to - 2] === 0x3d) pad++;
  return ((to - from) / 4) * 3 - pad;
}

/**
 * Parses index.json from its bytes, the postings already decoded. Why not one `JSON.parse`: at
 * 10,000 outputs that (and decoding the file to text first) was the load's longest stall, most of
 * it the postings' base64. The postings are the file's last member, written as
 * `,"postings":["…","…"]}` after a head that holds no such sequence (terms and ids hold no
 * quotes): the head is decoded and parsed as JSON, and each piece is decoded from the bytes in
 * its own event-loop turn. A piece holding anything but base64 decodes to fewer bytes than its
 * length says and is refused. A file laid out otherwise is parsed whole.
 */
async function parseEnvelope(bytes: Buffer, pause: () => Promise<void>): Promise<{ value: unknown; pieces?: Buffer[] }> {
  const at = bytes.indexOf(POSTINGS_START);
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d || bytes[end - 1] === 0x20)) end--;
  end -= POSTINGS_END.length;
  let from = at + POSTINGS_START.length;
  if (at < 0 || end < from || !bytes.subarray(end, end + POSTINGS_END.length).equals(POSTINGS_END)) {
    return { value: JSON.parse(bytes.toString('utf8')) };
  }
  const value: unknown = JSON.parse(`${bytes.toString('utf8', 0, at)}}`);
  await pause();
  const pieces: Buffer[] = [];
  while (from <= end) {
    let to = bytes.indexOf(PIECE_SEPARATOR, from);
    if (to < 0 || to > end) to = end;
    if ((to - from) % 4 !== 0) throw new Error(`postings piece ${pieces.length} is not base64`);
    const piece = Buffer.from(bytes.toString('latin1', from, to), 'base64');
    if (piece.length !== base64Bytes(bytes, from, to)) throw new Error(`postings piece ${pieces.length} is not base64`);
    pieces.push(piece);
    from = to + PIECE_SEPARATOR.length;
    await pause();
  }
  return { value, pieces };
}

/** The text of index.json for `data`, in pieces, with `pause()` between the big ones. */
export async function* indexFileChunks(runId: string, data: PackedData, pause: () => Promise<void>): AsyncGenerator<Buffer> {
  const head = {
    schemaVersion: INDEX_SCHEMA_VERSION,
    kind: SEARCH_INDEX_KIND,
    format: INDEX_FORMAT,
    analyzer: ANALYZER_VERSION,
    runId,
    docCount: data.refs.length,
    fields: data.fields,
    avgFieldLength: data.avgFieldLength,
  };
  // Compact JSON: indentation would only add bytes to parse.
  yield Buffer.from(JSON.stringify(head).slice(0, -1));
  yield Buffer.from(`,"refs":${JSON.stringify(data.refs)},"attempts":${JSON.stringify(data.attempts)}`);
  yield Buffer.from(`,"statuses":${JSON.stringify(data.statuses)},"indexedBytes":${JSON.stringify(data.indexedBytes)}`);
  await pause();
  yield Buffer.from(`,"fieldLength":"${uint32Base64(data.fieldLength)}"`);
  yield Buffer.from(`,"terms":${JSON.stringify(data.terms.join('\n'))}`);
  await pause();
  yield Buffer.from(`,"offsets":"${uint32Base64(data.offsets)}","postings":[`);
  for (let at = 0; at < data.postings.length; at += PIECE_BYTES) {
    await pause();
    const piece = Buffer.from(data.postings.buffer, data.postings.byteOffset + at, Math.min(PIECE_BYTES, data.postings.length - at));
    yield Buffer.from(`${at === 0 ? '' : ','}"${piece.toString('base64')}"`, 'latin1');
  }
  yield Buffer.from(']}\n');
}

/** Replaces `file` atomically with index.json for `data`; `fence` runs right before the rename. */
export async function writeIndexFile(file: string, runId: string, data: PackedData, pause: () => Promise<void>, fence?: () => void): Promise<void> {
  await writeChunksAtomic(file, indexFileChunks(runId, data, pause), fence ? { fence } : {});
}
