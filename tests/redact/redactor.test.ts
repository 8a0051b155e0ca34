/**
 * The redactor: a canary for every rule, the exact values of secret-looking env variables and
 * passEnv, ordinary strings left alone, and this repository's src/ as a false-positive corpus.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redactor, SECRET_RULES, countsToList, isSecretName, secretValuesOf } from '../../src/redact/index.js';

/** A canary per rule: text around a secret, and the secret that must not survive. */
const CANARIES: Record<string, { text: string; secret: string }> = (() => {
  const mk = (secret: string, around = (s: string) => `found: ${s} (end)`) => ({ text: around(secret), secret });
  const key = [
    '-----BEGIN OPENSSH PRIVATE KEY-----',
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
    'QyNTUxOQAAACDxqEZVV1RW3Ww2OzfK8wEIQvbXUPwnW7HtVT9wE6eQqAAAAJCP2n3Hj9p9',
    '-----END OPENSSH PRIVATE KEY-----',
  ].join('\n');
  return {
    'private-key': mk(key, (s) => `cat ~/.ssh/id_ed25519\n${s}\ndone`),
    'anthropic-api-key': mk(`sk-ant-api03-${'Ab3_x-Yz9Q'.repeat(9)}xyzAA`),
    'openai-api-key': mk(`sk-proj-${'Zq8Rt2Lm5N'.repeat(5)}`),
    'aws-access-key-id': mk('AKIAIOSFODNN7EXAMPLE'),
    'aws-secret-access-key': mk('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', (s) => `aws_secret_access_key = ${s}\n`),
    'github-token': mk(`ghp_${'a1B2c3D4e5'.repeat(3)}f6G7h8`),
    'gitlab-token': mk('glpat-xR4bN7kQ2mZ9vL1pT6wY'),
    'slack-token': mk('xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'),
    'slack-webhook': mk('https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/mNoPqRsTuVwXyZ0123456789'),
    'stripe-key': mk(`sk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`),
    'google-api-key': mk(`AIza${'SyD-9tSrke72PouQMnMX'}${'-a7eZSW0jkFMBWY'}`),
    jwt: mk('eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'),
    'npm-token': mk(`npm_${'aB3dE6gH9j'.repeat(3)}kL2mN4`),
    'huggingface-token': mk(`hf_${'abcdEFGHij'.repeat(3)}klMN`),
    'sendgrid-key': mk(`SG.${'aB3_dE6-gH9jK2mN4pQ7sT'}.${'vW0yZ1bC4eF7hJ0kM3nP6qS9tV2wX5zA8cD1fG4iL7o'}`),
    'url-password': mk('s3cr3tP4ss!', (s) => `connecting to postgres://admin:${s}@db.example.com:5432/app`),
  };
})();

describe('format rules: a canary each', () => {
  it('every rule of the table has a canary here', () => {
    expect(Object.keys(CANARIES).sort()).toEqual(SECRET_RULES.map((r) => r.id).sort());
  });

  for (const [rule, c] of Object.entries(CANARIES)) {
    it(`${rule}: replaced by [REDACTED:${rule}], counted once`, () => {
      const r = new Redactor().redact(c.text);
      expect(r.text).not.toContain(c.secret);
      expect(r.text).toContain(`[REDACTED:${rule}]`);
      expect(countsToList(r.counts)).toEqual([{ rule, count: 1 }]);
    });
  }

  it('readable context stays: the user and host of a URL, the name of an AWS key', () => {
    const r = new Redactor();
    expect(r.redact('redis://:hunter2hunter2@127.0.0.1:6379/0').text).toBe('redis://:[REDACTED:url-password]@127.0.0.1:6379/0');
    expect(r.redact(CANARIES['url-password']!.text).text).toBe('connecting to postgres://admin:[REDACTED:url-password]@db.example.com:5432/app');
    expect(r.redact(CANARIES['aws-secret-access-key']!.text).text).toBe('aws_secret_access_key = [REDACTED:aws-secret-access-key]\n');
  });

  it('a private key whose END line was cut off (a truncated output) still goes', () => {
    const cut = CANARIES['private-key']!.secret.split('\n').slice(0, 3).join('\n');
    const r = new Redactor().redact(`${cut}`);
    expect(r.text).toBe('[REDACTED:private-key]');
  });

  it('several secrets in one text, each counted', () => {
    const text = Object.values(CANARIES).map((c) => c.text).join('\n');
    const r = new Redactor().redact(text);
    for (const c of Object.values(CANARIES)) expect(r.text).not.toContain(c.secret);
    expect([...r.counts.values()].reduce((a, b) => a + b, 0)).toBe(Object.keys(CANARIES).length);
  });
});

describe('ordinary strings stay', () => {
  it.each([
    ['a git SHA', 'commit 3f8a2c1d9e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b fixed it'],
    ['a UUID', 'session 7bfdd0f0-375a-4908-953a-82dd35fec023 ended'],
    ['a run id', 'run 20261207-203220-k3j9x2 completed'],
    ['base64', 'data: SGVsbG8sIHdvcmxkISBUaGlzIGlzIGp1c3QgYmFzZTY0IHRleHQgb2YgYSBzZW50ZW5jZS4='],
    ['a URL without a password', 'see https://example.com:8443/path?q=1 and git@github.com:org/repo.git'],
    ['an e-mail in a URL-ish line', 'mailto:someone@example.com and ssh://git@host/repo'],
    ['words that contain prefixes', 'task-ask and risk_live_update and the AIza prefix alone'],
    ['an env variable *name*', 'set GITHUB_TOKEN and ANTHROPIC_API_KEY in your shell'],
    ['a redaction marker', 'postgres://u:[REDACTED:url-password]@h/db'],
  ])('%s', (_what, text) => {
    const r = new Redactor().redact(text);
    expect(r.text).toBe(text);
    expect(r.counts.size).toBe(0);
  });

  it("this repository's src/ as a corpus: no redaction at all", () => {
    const root = join(__dirname, '..', '..', 'src');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(root);
    expect(files.length).toBeGreaterThan(50);
    const r = new Redactor();
    const hits = files.flatMap((f) => {
      const res = r.redact(readFileSync(f, 'utf8'));
      return countsToList(res.counts).map((c) => `${f}: ${c.rule} ×${c.count}`);
    });
    expect(hits).toEqual([]);
  });
});

describe('exact values of the owner environment', () => {
  it('secret-looking names by their underscore-separated parts', () => {
    for (const n of ['GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'DB_PASSWORD', 'MY_PASSWD', 'GOOGLE_CREDENTIALS', 'NPM_AUTH', 'api_key', 'X_CREDENTIAL']) {
      expect(isSecretName(n), n).toBe(true);
    }
    for (const n of ['SSH_AUTH_SOCK', 'XAUTHORITY', 'KEYBOARD_LAYOUT', 'PATH', 'HOME', 'MONKEY', 'AUTHOR_NAME', 'TOKENIZER']) {
      expect(isSecretName(n), n).toBe(false);
    }
  });

  it('values of 8+ characters of secret names and of passEnv, not paths; rule env:<NAME>', () => {
    const values = secretValuesOf(
      { GITHUB_TOKEN: 'tok-1234567890', SHORT_KEY: 'abc', PLAIN: 'not-secret-value', SSH_AUTH_SOCK: '/run/ssh.sock', GOOGLE_CREDENTIALS: '/home/me/creds.json', SESSION: 'sess-value-xyz' },
      ['SESSION'],
    );
    expect(values).toEqual([
      { rule: 'env:GITHUB_TOKEN', value: 'tok-1234567890' },
      { rule: 'env:SESSION', value: 'sess-value-xyz' },
    ]);
  });

  it('replaces every occurrence, longest value first, and counts them', () => {
    const r = new Redactor([
      { rule: 'env:A_TOKEN', value: 'abcdefgh' },
      { rule: 'env:B_TOKEN', value: 'abcdefgh-longer' },
    ]);
    const out = r.redact('x abcdefgh-longer y abcdefgh z abcdefgh');
    expect(out.text).toBe('x [REDACTED:env:B_TOKEN] y [REDACTED:env:A_TOKEN] z [REDACTED:env:A_TOKEN]');
    expect(countsToList(out.counts)).toEqual([
      { rule: 'env:A_TOKEN', count: 2 },
      { rule: 'env:B_TOKEN', count: 1 },
    ]);
  });

  it('redactValue walks a structured answer: strings and keys, deep copy', () => {
    const r = new Redactor([{ rule: 'env:X_TOKEN', value: 'secret-value-1' }]);
    const input = { found: ['secret-value-1', 2, null], nested: { 'secret-value-1': AKIA() }, ok: true };
    const counts = new Map<string, number>();
    const out = r.redactValue(input, counts);
    expect(out).toEqual({ found: ['[REDACTED:env:X_TOKEN]', 2, null], nested: { '[REDACTED:env:X_TOKEN]': '[REDACTED:aws-access-key-id]' }, ok: true });
    expect(input.found[0]).toBe('secret-value-1');
    expect(countsToList(counts)).toEqual([
      { rule: 'aws-access-key-id', count: 1 },
      { rule: 'env:X_TOKEN', count: 2 },
    ]);
  });
});

function AKIA(): string {
  return 'AKIAIOSFODNN7EXAMPLE';
}
