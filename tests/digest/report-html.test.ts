import { describe, expect, it } from 'vitest';
import { escapeHtml, phaseDigests, renderInline, renderMarkdownHtml, renderReportHtml, renderReportMarkdown } from '../../src/digest/index.js';
import { HOSTILE, makePhase, makePlan, makeRecord, makeRun, scenario, type Scenario } from './fixtures.js';

function page(s: Scenario): string {
  const digests = phaseDigests({ phases: s.run.plan.phases, goal: s.run.plan.goal, records: s.latest });
  const markdown = renderReportMarkdown({ run: s.run, latest: s.latest, digests, attempts: s.attempts });
  return renderReportHtml({ run: s.run, records: s.attempts, markdown });
}

const bars = (html: string): RegExpMatchArray[] => [...html.matchAll(/<div class="bar [^"]*" data-ref="([^"]*)" data-status="([^"]*)"/g)];

describe('renderReportHtml', () => {
  it('draws one bar per attempt, retries included, with ref and status', () => {
    const s = scenario(40, 'completed');
    const html = page(s);
    const found = bars(html);
    expect(found.length).toBe(s.attempts.length);
    expect(s.attempts.length).toBeGreaterThan(s.latest.length); // there are retries
    const byStatus = (st: string): number => found.filter((m) => m[2] === st).length;
    expect(byStatus('failed')).toBe(s.attempts.filter((r) => r.status === 'failed').length);
    expect(found.filter((m) => m[1] === 'map/t0005').length).toBe(2);
  });

  it('is one self-contained page: no external assets, one script allowed by hash', () => {
    const html = page(scenario(10, 'stopped', { reason: 'stop requested' }));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/url\(/i);
    expect(html.match(/<script\b/g)?.length).toBe(1);
    expect(html).toMatch(/Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; script-src &#39;sha256-[A-Za-z0-9+/=]+&#39;/);
    expect(html).toContain('stop requested');
  });

  it('escapes hostile outputs, causes and names everywhere', () => {
    const s = scenario(30, 'failed', { hostile: true, reason: HOSTILE });
    const html = page(s);
    expect(html.match(/<script\b/gi)?.length).toBe(1);
    expect(html).not.toMatch(/<img\b/i);
    expect(html).not.toContain('onerror="');
    expect(html).toContain('&lt;script&gt;document.title=&quot;PWNED&quot;');
    // Attributes hold escaped quotes, so no attribute can be broken out of.
    for (const m of html.matchAll(/title="([^"]*)"/g)) expect(m[1]).not.toMatch(/[<>]/);
  });

  it('scales to 1000 bars', () => {
    const s = scenario(1000, 'completed');
    const started = performance.now();
    const html = page(s);
    expect(bars(html).length).toBe(s.attempts.length);
    expect(s.attempts.length).toBeGreaterThan(1000);
    expect(html.length).toBeLessThan(2_000_000);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('handles a run with no attempts and records with unknown times', () => {
    const plan = makePlan([makePhase('a', 2)]);
    const run = makeRun(plan, 'running');
    expect(page({ run, attempts: [], latest: [] })).toContain('No agent has run yet.');
    const odd = [makeRecord({ phaseId: 'a', taskId: 't0001', startedAt: 'garbage', endedAt: '' }), makeRecord({ phaseId: 'zz', taskId: 'x' })];
    const html = renderReportHtml({ run, records: odd, markdown: '# x' });
    expect(bars(html).length).toBe(2);
    expect(html).toContain('start time unknown');
  });
});

describe('renderMarkdownHtml', () => {
  it('renders the subset the report uses', () => {
    const html = renderMarkdownHtml(
      ['# Title', '', '**Status: ok** — fine `code`', '', '| A | B |', '| --- | ---: |', '| `x\\|y` | 2 |', '', '- one', '- _two_', '', '````text', 'a ``` b', '<b>', '````'].join('\n'),
    );
    expect(html).toContain('<h1>Title</h1>');
    expect(html).toContain('<p><strong>Status: ok</strong> — fine <code>code</code></p>');
    expect(html).toContain('<th>A</th><th class="right">B</th>');
    expect(html).toContain('<td><code>x\\|y</code></td><td class="right">2</td>');
    expect(html).toContain('<ul><li>one</li><li><em>two</em></li></ul>');
    expect(html).toContain('<pre><code>a ``` b\n&lt;b&gt;</code></pre>');
  });

  it('never lets input make tags or attributes', () => {
    const evil = ['# <img src=x onerror=alert(1)>', '**<script>x</script>**', '| <a href="javascript:1">x</a> | "\' |', '| --- | --- |', '| <i> | & |', '- `</code><script>`', '```', '</code></pre><script>alert(1)</script>', '```'].join('\n');
    const html = renderMarkdownHtml(evil);
    expect(html).not.toMatch(/<(img|script|a|i)\b/);
    expect(html).toContain('&lt;script&gt;');
    expect(renderInline('\\<b\\> & "q"')).toBe('&lt;b&gt; &amp; &quot;q&quot;');
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });
});
