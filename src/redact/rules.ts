/**
 * Well-known credential formats, as a table of rules with keyword prefilters.
 *
 * The patterns are the published token formats, ported from gitleaks' MIT-licensed default
 * config (config/gitleaks.toml: anthropic-api-key, openai-api-key, aws-access-token,
 * github-pat/-oauth/-app-token/-refresh-token/-fine-grained-pat, gitlab-*, slack-*, stripe-access-
 * token, gcp-api-key, private-key, jwt, npm-access-token, huggingface-access-token,
 * sendgrid-api-token) and narrowed where a rule there leans on its entropy check, which this table
 * does not run. Two more: `aws-secret-access-key` (the 40-character key right after its name, as
 * secretlint's AWS rule finds it) and `url-password` (the password of `scheme://user:<password>@host`).
 *
 * Why keywords: a rule's regex runs only when one of its literal keywords occurs in the text, and
 * `indexOf` over a few KB costs microseconds; so the whole table stays well under a millisecond per
 * 5 KB output (bench B10), where a single combined regex or secretlint's preset measured slower
 * (0.85 ms per 5 KB with @secretlint/core 11.7 and fewer formats: no GitLab, Stripe, JWT or Google
 * API keys in its recommended preset).
 *
 * Why no generic "high-entropy string" rule: git SHAs, UUIDs, run ids and ordinary base64 must
 * stay readable in outputs; every rule here anchors on a format's fixed prefix or on a name.
 */

/** One credential format. */
export interface SecretRule {
  /** Rule id, used in the marker `[REDACTED:<id>]` and in the record's `redactions`. */
  id: string;
  /** Literal substrings (case-sensitive) of which at least one must occur for the regex to run. */
  keywords: readonly string[];
  /** Global regex of the secret. */
  pattern: RegExp;
  /**
   * Capture group holding the secret when the match also holds context that stays readable (a
   * name, `user:`); 0 or absent: the whole match is the secret.
   */
  group?: number;
}

/** Characters that end a token: not part of base64url. */
const END = '(?![A-Za-z0-9_-])';

/** The table, applied in order. */
export const SECRET_RULES: readonly SecretRule[] = [
  {
    id: 'private-key',
    keywords: ['PRIVATE KEY'],
    // A whole block; or, when the END line was cut off (a truncated output, a stderr tail), the
    // header and the key material that follows it.
    pattern:
      /-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,20000}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]*)/g,
  },
  {
    id: 'anthropic-api-key',
    keywords: ['sk-ant-'],
    pattern: new RegExp(`\\bsk-ant-[a-z]{2,10}\\d{2}-[A-Za-z0-9_-]{20,}${END}`, 'g'),
  },
  {
    id: 'openai-api-key',
    keywords: ['T3BlbkFJ', 'sk-proj-', 'sk-svcacct-', 'sk-admin-', 'sk-None-'],
    pattern: new RegExp(`\\bsk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})${END}`, 'g'),
  },
  {
    id: 'aws-access-key-id',
    keywords: ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'],
    pattern: /\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b/g,
  },
  {
    id: 'aws-secret-access-key',
    keywords: ['aws_secret', 'AWS_SECRET', 'SecretAccessKey', 'secret_access_key', 'aws-secret', 'secretAccessKey'],
    pattern: /((?:aws_?secret_?access_?key|secret_?access_?key|aws-secret-access-key)["']?\s{0,5}(?::|=|=>)\s{0,5}["']?)([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
    group: 2,
  },
  {
    id: 'github-token',
    keywords: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
    pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{82})\b/g,
  },
  {
    id: 'gitlab-token',
    keywords: ['glpat-', 'gldt-', 'glrt-', 'glptt-', 'glcbt-', 'glsoat-', 'glffct-', 'gloas-', 'glimt-', 'glagent-', 'GR1348941'],
    pattern: new RegExp(
      `\\b(?:gl(?:pat|dt|rt|cbt|soat|ffct|oas|imt|agent)-[A-Za-z0-9_.-]{20,}|glptt-[0-9a-f]{40}|GR1348941[A-Za-z0-9_-]{20})${END}`,
      'g',
    ),
  },
  {
    id: 'slack-token',
    keywords: ['xoxb-', 'xoxp-', 'xoxa-', 'xoxe-', 'xoxo-', 'xoxs-', 'xoxr-', 'xapp-'],
    pattern: /\b(?:xox[abeoprs]-(?:\d+-)?[A-Za-z0-9-]{10,}|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)\b/g,
  },
  {
    id: 'slack-webhook',
    keywords: ['hooks.slack.com'],
    pattern: /https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9+/]{20,}/g,
  },
  {
    id: 'stripe-key',
    keywords: ['sk_live_', 'sk_test_', 'sk_prod_', 'rk_live_', 'rk_test_', 'rk_prod_'],
    pattern: /\b[rs]k_(?:live|test|prod)_[A-Za-z0-9]{10,99}\b/g,
  },
  {
    id: 'google-api-key',
    keywords: ['AIza'],
    pattern: new RegExp(`\\bAIza[A-Za-z0-9_-]{35}${END}`, 'g'),
  },
  {
    id: 'jwt',
    keywords: ['eyJ'],
    pattern: new RegExp(`\\beyJ[A-Za-z0-9_-]{10,}\\.eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]*${END}`, 'g'),
  },
  {
    id: 'npm-token',
    keywords: ['npm_'],
    pattern: /\bnpm_[A-Za-z0-9]{36}\b/g,
  },
  {
    id: 'huggingface-token',
    keywords: ['hf_'],
    pattern: /\bhf_[A-Za-z]{34}\b/g,
  },
  {
    id: 'sendgrid-key',
    keywords: ['SG.'],
    pattern: new RegExp(`\\bSG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43}${END}`, 'g'),
  },
  {
    id: 'url-password',
    keywords: ['://'],
    // scheme://user:<password>@host — the password only; user and host stay readable.
    pattern: /(\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}:\/\/[^\s:@/?#"'`<>[\]]{0,100}:)([^\s@/?#"'`<>[\]]{1,200})(?=@[^\s@/?#"'`<>]*[A-Za-z0-9])/g,
    group: 2,
  },
];
