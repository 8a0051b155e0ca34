import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FILE_NAME_PATTERN,
  ID_PATTERN,
  assertFileName,
  assertId,
  isFileName,
  isId,
  newRunId,
  newToken,
} from '../../src/store/ids.js';
import { StoreError, errnoCode, ioError, isRetryableCode, isStoreError, quote } from '../../src/store/errors.js';

const VALID_IDS = ['a', 'A', '0', 'run1', 'a-b_c', 'map', 'Z9', 'x'.repeat(64), '9-_', 'abc123def456'];

const INVALID_IDS: [string, unknown][] = [
  ['empty', ''],
  ['dot', '.'],
  ['dotdot', '..'],
  ['slash', '/'],
  ['backslash', '\\'],
  ['parent traversal', '../x'],
  ['nested traversal', 'a/../../b'],
  ['windows traversal', '..\\x'],
  ['absolute', '/etc/passwd'],
  ['windows absolute', 'C:\\x'],
  ['drive letter', 'C:'],
  ['inner slash', 'a/b'],
  ['inner backslash', 'a\\b'],
  ['NUL', 'a\0b'],
  ['trailing NUL', 'abc\0'],
  ['only NUL', '\0'],
  ['65 chars', 'x'.repeat(65)],
  ['very long', 'a'.repeat(10_000)],
  ['leading dash', '-rf'],
  ['leading underscore', '_a'],
  ['dot inside', 'a.b'],
  ['hidden', '.plans'],
  ['leading space', ' a'],
  ['trailing space', 'a '],
  ['inner space', 'a b'],
  ['trailing newline', 'abc\n'],
  ['leading newline', '\nabc'],
  ['CR', 'a\rb'],
  ['tab', 'a\tb'],
  ['fullwidth a', '\uff41'],
  ['fullwidth solidus', 'a\uff0fb'],
  ['cyrillic a', '\u0430bc'],
  ['greek omicron', '\u03bfk'],
  ['zero width space', 'a\u200bb'],
  ['RTL override', 'a\u202eb'],
  ['ligature fi', '\ufb01le'],
  ['division slash', 'a\u2215b'],
  ['fraction slash', 'a\u2044b'],
  ['one dot leader', 'a\u2024\u2024'],
  ['combining accent', 'e\u0301'],
  ['emoji', 'run\u{1F600}'],
  ['percent-encoded traversal', '%2e%2e'],
  ['tilde', '~'],
  ['home', '~root'],
  ['colon', 'a:b'],
  ['star', '*'],
  ['question', 'a?'],
  ['shell', '$(rm)'],
  ['undefined', undefined],
  ['null', null],
  ['number', 42],
  ['boolean', true],
  ['object', { toString: () => 'a' }],
  ['array', ['a']],
  ['String object', new String('abc')],
];

describe('ID_PATTERN / isId / assertId', () => {
  it.each(VALID_IDS)('accepts %j', (id) => {
    expect(isId(id)).toBe(true);
    expect(assertId('run', id)).toBe(id);
  });

  it.each(INVALID_IDS)('rejects %s', (_name, value) => {
    expect(isId(value)).toBe(false);
    expect(() => assertId('run', value)).toThrow(StoreError);
    try {
      assertId('run', value);
    } catch (err) {
      expect(isStoreError(err, 'invalid_id')).toBe(true);
      expect((err as StoreError).retryable).toBe(false);
      expect((err as Error).message).toMatch(/^store: invalid run id /);
    }
  });

  it('names the object and the rule in the message', () => {
    expect(() => assertId('run', '../x')).toThrow(
      "store: invalid run id '../x': expected 1–64 letters, digits, '-' or '_', starting with a letter or digit",
    );
    expect(() => assertId('phase', 'a b')).toThrow(/^store: invalid phase id 'a b'/);
  });

  it('escapes control characters and shortens long values in messages', () => {
    let msg = '';
    try {
      assertId('task', 'a\0b\nc');
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain("'a\\u0000b\\u000ac'");
    expect(msg).not.toContain('\0');
    expect(msg).not.toContain('\n');
    try {
      assertId('task', 'y'.repeat(500));
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain('(500 chars)');
    expect(msg.length).toBeLessThan(300);
  });

  it('describes non-strings by type', () => {
    expect(() => assertId('run', undefined)).toThrow("store: invalid run id undefined undefined: expected");
    expect(() => assertId('run', 7)).toThrow('invalid run id number 7');
    expect(() => assertId('run', null)).toThrow('invalid run id null');
    expect(() => assertId('run', {})).toThrow('invalid run id an object');
  });

  it('the pattern is anchored and has no multiline escape hatch', () => {
    expect(ID_PATTERN.flags).toBe('');
    expect(ID_PATTERN.test('ok\nok')).toBe(false);
    expect(ID_PATTERN.test('ok\n')).toBe(false);
  });

  it('property: whatever passes is path-safe', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[A-Za-z0-9_.\-/\\]{0,70}$/)), (s) => {
        if (isId(s)) {
          expect(s.length).toBeGreaterThanOrEqual(1);
          expect(s.length).toBeLessThanOrEqual(64);
          expect(s).not.toMatch(/[./\\\0]/);
          expect(s).toMatch(/^[\x21-\x7e]+$/);
          expect(s[0]).not.toBe('-');
          expect(assertId('x', s)).toBe(s);
        } else {
          expect(() => assertId('x', s)).toThrow(StoreError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('property: every string built from the allowed alphabet with a valid first char passes', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/), (s) => {
        expect(isId(s)).toBe(true);
      }),
    );
  });
});

describe('FILE_NAME_PATTERN / isFileName / assertFileName', () => {
  it.each(['map.core.3.json', 'run.json', 'events.jsonl', 'a.b', 'map.core.1.prompt.txt', 'lease.takeover.abc.json', `${'a'.repeat(64)}.json`])(
    'accepts %j',
    (name) => {
      expect(isFileName(name)).toBe(true);
      expect(assertFileName('input', name)).toBe(name);
    },
  );

  it.each([
    '',
    'json',
    'run',
    '.json',
    '.',
    '..',
    '...',
    'a..b',
    'a.',
    'a.b.',
    '.a.b',
    'a/b.json',
    '../x.json',
    'a\\b.json',
    'x.json/',
    'a.json\0',
    'a.-x',
    'a._x',
    'a. b',
    'a .b',
    `${'a'.repeat(65)}.json`,
    Array.from({ length: 60 }, () => 'abcd').join('.'), // 299 chars of valid parts
    'r\u0430n.json',
    'run.j\uff53on',
  ])('rejects %j', (name) => {
    expect(isFileName(name)).toBe(false);
    expect(() => assertFileName('input', name)).toThrow(StoreError);
    try {
      assertFileName('input', name);
    } catch (err) {
      expect((err as StoreError).code).toBe('invalid_name');
      expect((err as Error).message).toMatch(/^store: invalid input file name /);
    }
  });

  it('rejects non-strings', () => {
    for (const v of [undefined, null, 1, {}, ['a.json']]) expect(isFileName(v)).toBe(false);
  });

  it('caps the whole name at 255 characters', () => {
    const ok = `${'a'.repeat(64)}.${'b'.repeat(64)}.${'c'.repeat(64)}.${'d'.repeat(60)}`; // 255
    expect(ok.length).toBe(255);
    expect(isFileName(ok)).toBe(true);
    expect(isFileName(`${ok}x`)).toBe(false);
    expect(FILE_NAME_PATTERN.test(`${ok}x`)).toBe(true); // the length cap is separate from the pattern
  });

  it('property: file names never contain separators, NUL, or empty/dot parts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[A-Za-z0-9_.\-/\\]{0,80}$/)), (s) => {
        if (isFileName(s)) {
          expect(s).not.toMatch(/[/\\\0]/);
          const parts = s.split('.');
          expect(parts.length).toBeGreaterThanOrEqual(2);
          for (const p of parts) expect(isId(p)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('newRunId / newToken', () => {
  it('run ids are 12 lowercase letters or digits, valid ids, and unique', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = newRunId();
      expect(id).toMatch(/^[a-z0-9]{12}$/);
      expect(isId(id)).toBe(true);
      seen.add(id);
    }
    expect(seen.size).toBe(5000);
  });

  it('tokens are 16 lowercase letters or digits', () => {
    const t = newToken();
    expect(t).toMatch(/^[a-z0-9]{16}$/);
    expect(newToken()).not.toBe(t);
  });
});

describe('StoreError', () => {
  it('carries code, retryable, cause, name, and the store prefix', () => {
    const cause = Object.assign(new Error('boom'), { code: 'EIO' });
    const e = new StoreError('io', 'writing x failed', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('StoreError');
    expect(e.code).toBe('io');
    expect(e.cause).toBe(cause);
    expect(e.message).toBe('store: writing x failed');
    expect(new StoreError('corrupt', 'store: already prefixed').message).toBe('store: already prefixed');
  });

  it('defaults retryable by code and errno', () => {
    expect(new StoreError('lease_held', 'x').retryable).toBe(true);
    expect(new StoreError('corrupt', 'x').retryable).toBe(false);
    expect(new StoreError('bad_version', 'x').retryable).toBe(false);
    expect(new StoreError('io', 'x', { cause: { code: 'EAGAIN' } }).retryable).toBe(true);
    expect(new StoreError('io', 'x', { cause: { code: 'EMFILE' } }).retryable).toBe(true);
    expect(new StoreError('io', 'x', { cause: { code: 'EACCES' } }).retryable).toBe(false);
    expect(new StoreError('io', 'x').retryable).toBe(false);
    expect(new StoreError('corrupt', 'x', { retryable: true }).retryable).toBe(true);
    expect(isRetryableCode('lease_lost')).toBe(false);
  });

  it('ioError wraps, keeps StoreErrors, and names the file', () => {
    const e = ioError('writing', '/a/b.json', Object.assign(new Error('EACCES: denied'), { code: 'EACCES' }));
    expect(e.code).toBe('io');
    expect(e.message).toBe('store: writing /a/b.json failed: EACCES: denied');
    const inner = new StoreError('corrupt', 'x');
    expect(ioError('reading', '/f', inner)).toBe(inner);
  });

  it('errnoCode and quote', () => {
    expect(errnoCode({ code: 'ENOENT' })).toBe('ENOENT');
    expect(errnoCode({ code: 3 })).toBeUndefined();
    expect(errnoCode(null)).toBeUndefined();
    expect(errnoCode('x')).toBeUndefined();
    expect(quote('a')).toBe("'a'");
    expect(quote('a\u2028b')).toBe("'a\\u2028b'");
    expect(quote([1])).toBe('an array');
  });
});
