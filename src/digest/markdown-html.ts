/**
 * A tiny, safe Markdown-to-HTML renderer for the subset `report-md.ts` emits: headings, paragraphs,
 * `-` lists, pipe tables, fenced code blocks, and inline code, `**strong**`, `_emphasis_` and
 * backslash escapes. Every piece of text is HTML-escaped; the only tags in the result are the fixed
 * ones written here, none with attributes taken from the input, so hostile text stays text.
 * Anything outside the subset renders as plain escaped paragraphs.
 */

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

const ESCAPABLE = /[\\`*_[\]<>|#~!(){}.+-]/;

/** Inline Markdown of one paragraph, list item, heading or cell. */
export function renderInline(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length && ESCAPABLE.test(text[i + 1]!)) {
      out += escapeHtml(text[i + 1]!);
      i += 2;
      continue;
    }
    if (c === '`') {
      let run = 1;
      while (text[i + run] === '`') run++;
      const bar = '`'.repeat(run);
      let close = text.indexOf(bar, i + run);
      // A closing run must be exactly as long as the opening one.
      while (close !== -1 && text[close + run] === '`') {
        let end = close;
        while (text[end] === '`') end++;
        close = text.indexOf(bar, end);
      }
      if (close === -1) {
        out += escapeHtml(bar);
        i += run;
        continue;
      }
      let inner = text.slice(i + run, close);
      if (inner.length >= 2 && inner.startsWith(' ') && inner.endsWith(' ') && inner.trim() !== '') inner = inner.slice(1, -1);
      out += `<code>${escapeHtml(inner)}</code>`;
      i = close + run;
      continue;
    }
    if (c === '*' && text[i + 1] === '*') {
      const close = findUnescaped(text, '**', i + 2);
      if (close > i + 2) {
        out += `<strong>${renderInline(text.slice(i + 2, close))}</strong>`;
        i = close + 2;
        continue;
      }
    }
    if (c === '_' && (i === 0 || /[\s(]/.test(text[i - 1]!))) {
      let close = findUnescaped(text, '_', i + 1);
      while (close !== -1 && close + 1 < text.length && !/[\s.,;:!?)]/.test(text[close + 1]!)) {
        close = findUnescaped(text, '_', close + 1);
      }
      if (close > i + 1) {
        out += `<em>${renderInline(text.slice(i + 1, close))}</em>`;
        i = close + 1;
        continue;
      }
    }
    out += escapeHtml(c);
    i++;
  }
  return out;
}

/** Index of `needle` in `text` from `from`, skipping backslash-escaped characters and code spans. */
function findUnescaped(text: string, needle: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') {
      i++;
      continue;
    }
    if (text[i] === '`') {
      let run = 1;
      while (text[i + run] === '`') run++;
      const close = text.indexOf('`'.repeat(run), i + run);
      if (close !== -1) {
        i = close + run - 1;
        continue;
      }
    }
    if (text.startsWith(needle, i)) return i;
  }
  return -1;
}

/** Splits a pipe-table row into cells, honouring `\|` and code spans. */
function splitRow(line: string): string[] {
  let body = line.trim();
  if (body.startsWith('|')) body = body.slice(1);
  if (body.endsWith('|') && !body.endsWith('\\|')) body = body.slice(0, -1);
  const cells: string[] = [];
  let cur = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\' && i + 1 < body.length) {
      cur += c + body[i + 1]!;
      i++;
    } else if (c === '|') {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  cells.push(cur.trim());
  return cells;
}

const SEPARATOR = /^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;

/** Renders the Markdown subset to an HTML fragment (see the module comment). */
export function renderMarkdownHtml(markdown: string): string {
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let para: string[] = [];
  const flush = (): void => {
    if (para.length > 0) out.push(`<p>${renderInline(para.join(' '))}</p>`);
    para = [];
  };
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    const fenceOpen = /^(`{3,})(.*)$/.exec(line);
    if (fenceOpen && !fenceOpen[2]!.includes('`')) {
      flush();
      const bar = fenceOpen[1]!;
      const body: string[] = [];
      i++;
      while (i < lines.length) {
        const l = lines[i]!;
        const t = l.trim();
        if (/^`+$/.test(t) && t.length >= bar.length) break;
        body.push(l);
        i++;
      }
      i++; // the closing fence (or the end)
      out.push(`<pre><code>${escapeHtml(body.join('\n'))}</code></pre>`);
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1]!.length;
      out.push(`<h${level}>${renderInline(heading[2]!.trim())}</h${level}>`);
      i++;
      continue;
    }
    if (line.trim().startsWith('|') && i + 1 < lines.length && SEPARATOR.test(lines[i + 1]!.trim())) {
      flush();
      const head = splitRow(line);
      const aligns = splitRow(lines[i + 1]!).map((c) => (c.endsWith(':') ? (c.startsWith(':') ? 'center' : 'right') : ''));
      const cell = (tag: string, text: string, k: number): string =>
        aligns[k] ? `<${tag} class="${aligns[k]}">${renderInline(text)}</${tag}>` : `<${tag}>${renderInline(text)}</${tag}>`;
      const rows: string[] = [];
      i += 2;
      while (i < lines.length && lines[i]!.trim().startsWith('|')) {
        rows.push(`<tr>${splitRow(lines[i]!).map((c, k) => cell('td', c, k)).join('')}</tr>`);
        i++;
      }
      out.push(
        `<div class="table"><table><thead><tr>${head.map((c, k) => cell('th', c, k)).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`,
      );
      continue;
    }
    if (/^[-*]\s+/.test(line)) {
      flush();
      const items: string[] = [];
      while (i < lines.length && /^[-*]\s+/.test(lines[i]!)) {
        items.push(`<li>${renderInline(lines[i]!.replace(/^[-*]\s+/, ''))}</li>`);
        i++;
      }
      out.push(`<ul>${items.join('')}</ul>`);
      continue;
    }
    if (line.trim() === '') {
      flush();
      i++;
      continue;
    }
    para.push(line.trim());
    i++;
  }
  flush();
  return out.join('\n');
}
