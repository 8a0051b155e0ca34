// The fanfold dashboard page: a plain ES module, no build step. It shows what the server's JSON API
// answers (the server computes every count and status; the page never counts for itself) and
// follows a run live through the journal's event stream. Every piece of text from a run goes into
// the page as text (textContent), never as markup; the two HTML fragments it inserts (the timeline
// and the report) are rendered and escaped by the server, the same code that writes report.html.

const main = document.getElementById('main');
const conn = document.getElementById('conn');
const toastEl = document.getElementById('toast');

// The token came in the URL once; the server has set its cookie. Drop it from the address bar
// (and from history), so it is not shared by a copied link or a screenshot.
if (location.search.includes('token=')) history.replaceState(null, '', location.pathname + location.hash);

/** Virtualise the task list beyond this many rows (every task's element is in the page up to it). */
const VIRTUAL_AFTER = 200;
const ROW_PX = 30;

// ---------- small helpers ----------

/** Creates an element: h('div', {class: 'x', onclick: fn}, 'text', child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: 'same-origin', ...opts });
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const msg = res.status === 401 ? 'The dashboard refused this request (401): open the URL that `fanfold ui` printed.' : (body && body.error) || `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return body;
}

function toast(text, error = false) {
  toastEl.textContent = text;
  toastEl.className = 'toast' + (error ? ' error' : '');
  toastEl.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (toastEl.hidden = true), error ? 9000 : 5000);
}

function fmtDuration(ms) {
  if (ms === undefined || ms === null || !isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fmtSpend(sp) {
  const x = sp || { usd: 0, tokens: 0 };
  const t = x.tokens >= 1e6 ? `${(x.tokens / 1e6).toFixed(1)}M` : x.tokens >= 1e3 ? `${(x.tokens / 1e3).toFixed(1)}k` : String(x.tokens);
  return `$${x.usd.toFixed(2)} · ${t} tokens`;
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

const WORDS = { check_failed: 'check failed', timed_out: 'timed out', awaiting_approval: 'awaiting approval', budget_exhausted: 'budget exhausted' };
const word = (s) => WORDS[s] || s;
const badge = (s) => h('span', { class: `badge ${s}`, text: word(s) });

/** A snippet with `**match**` marks as text and <mark> nodes. */
function snippetNodes(text) {
  return String(text).split('**').map((part, i) => (i % 2 ? h('mark', {}, part) : part));
}

/** Calls `fn` at most once per `ms`, the last call winning. */
function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return function run() {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(() => { timer = null; if (again) { again = false; run(); } }, ms);
  };
}

// ---------- routing ----------

let cleanup = [];
function onLeave(fn) { cleanup.push(fn); }

function route() {
  for (const fn of cleanup.splice(0)) { try { fn(); } catch { /* ignore */ } }
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  const parts = hash.split('/').filter(Boolean);
  if (parts[0] === 'run' && parts[1]) return showRun(parts[1], parts[2] && parts[3] ? `${parts[2]}/${parts[3]}` : null);
  if (parts[0] === 'search') return showSearch(parts.slice(1).join('/'));
  return showRuns();
}

// Within one run, changing the selected agent must not rebuild the run page.
let current = null;
window.addEventListener('hashchange', () => {
  const m = /^#\/run\/([^/]+)(?:\/([^/]+)\/([^/]+))?$/.exec(location.hash);
  if (current && m && decodeURIComponent(m[1]) === current.runId) {
    current.select(m[2] ? `${decodeURIComponent(m[2])}/${decodeURIComponent(m[3])}` : null);
    return;
  }
  current = null;
  route();
});

document.getElementById('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('q').value.trim();
  if (q) location.hash = `#/search/${encodeURIComponent(q)}`;
});

document.addEventListener('keydown', (e) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
  if (e.key === '/' && !typing) { e.preventDefault(); document.getElementById('q').focus(); }
  if (e.key === 'Escape' && current && current.selected) { e.preventDefault(); location.hash = `#/run/${encodeURIComponent(current.runId)}`; }
});

function setConn(state) {
  conn.className = `conn ${state || ''}`;
  conn.textContent = state === 'live' ? 'live' : state === 'down' ? 'reconnecting…' : '';
}

// ---------- runs ----------

async function showRuns() {
  document.title = 'Runs — fanfold';
  const filter = h('input', { type: 'search', placeholder: 'Filter by name, id or status', 'aria-label': 'Filter runs' });
  const status = h('select', { 'aria-label': 'Only runs with status' },
    h('option', { value: '' }, 'any status'),
    ...['running', 'awaiting_approval', 'completed', 'failed', 'stopped', 'interrupted', 'budget_exhausted', 'paused'].map((s) => h('option', { value: s }, word(s))));
  const body = h('tbody');
  const summary = h('p', { class: 'muted' });
  main.replaceChildren(h('h1', {}, 'Runs'), h('div', { class: 'toolbar' }, filter, status), summary,
    h('div', { class: 'table-wrap' }, h('table', { class: 'runs' },
      h('thead', {}, h('tr', {}, ...['Run', 'Status', 'Done / total', 'Failed', 'Spend', 'Started', 'Duration'].map((t) => h('th', { scope: 'col' }, t)))), body)));
  let data = { runs: [], total: 0 };
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const rows = data.runs.filter((r) => (!status.value || r.status === status.value) &&
      (!q || `${r.name} ${r.runId} ${r.status}`.toLowerCase().includes(q)));
    body.replaceChildren(...rows.map((r) => h('tr', { 'data-run-row': r.runId, 'data-status': r.status },
      h('td', { class: 'name' }, h('a', { href: `#/run/${encodeURIComponent(r.runId)}` }, r.name || r.runId), h('div', { class: 'muted' }, r.runId)),
      h('td', {}, badge(r.status)),
      h('td', { class: 'num' }, `${r.done} / ${r.total}`),
      h('td', { class: 'num' }, String(r.failed)),
      h('td', { class: 'num' }, fmtSpend(r.spend)),
      h('td', {}, fmtTime(r.startedAt)),
      h('td', { class: 'num' }, fmtDuration(r.elapsedMs)))));
    summary.textContent = data.total === 0 ? 'No runs in this store yet: start one with `fanfold run spec.yaml` or from your agent host.'
      : `${rows.length} of ${data.total} run${data.total === 1 ? '' : 's'} shown · total spend ${fmtSpend(data.spend)}`;
  };
  filter.addEventListener('input', draw);
  status.addEventListener('change', draw);
  const load = throttle(async () => {
    try { data = await api('/api/runs'); draw(); } catch (e) { summary.textContent = e.message; }
  }, 1000);
  load();
  const es = new EventSource('/api/events');
  es.addEventListener('runs', load);
  es.onopen = () => setConn('live');
  es.onerror = () => setConn('down');
  onLeave(() => { es.close(); setConn(''); });
}

// ---------- one run ----------

function showRun(runId, selected) {
  document.title = `${runId} — fanfold`;
  const root = h('section', { id: 'run', class: 'run', 'data-run-id': runId, 'data-run-status': '' });
  const head = h('div');
  const controls = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Run controls' });
  const checkpoints = h('div');
  const phases = h('div', { class: 'phases' });
  const dynamic = h('div');
  const tl = h('div', { class: 'tl-box', id: 'tl' });
  const taskFilter = h('input', { type: 'search', placeholder: 'Filter tasks (ref or status)', 'aria-label': 'Filter tasks' });
  const taskCount = h('span', { class: 'muted' });
  const list = h('div', { class: 'tasks', role: 'listbox', 'aria-label': 'Tasks (arrow keys move, Enter opens)', id: 'tasks' });
  const agentPane = h('div', { class: 'agent', id: 'agent' }, h('p', { class: 'muted' }, 'Select a task to see its prompt, output and attempts.'));
  const report = h('div', { class: 'report', id: 'report' });
  root.append(head, controls, checkpoints, h('h2', {}, 'Phases'), phases, dynamic, h('h2', {}, 'Timeline'), tl,
    h('div', { class: 'split' },
      h('div', {}, h('h2', {}, 'Tasks'), h('div', { class: 'tasks-head' }, taskFilter, taskCount), list),
      h('div', {}, h('h2', {}, 'Agent'), agentPane)),
    report);
  main.replaceChildren(root);

  const state = { view: null, rows: [], byRef: new Map(), fetchedAt: 0 };
  const rowEls = new Map();
  const page = { runId, selected, select };
  current = page;
  let closed = false;
  onLeave(() => { closed = true; });

  // --- header and controls
  function drawHead() {
    const v = state.view;
    root.setAttribute('data-run-status', v.status);
    document.title = `${v.name} (${word(v.status)}) — fanfold`;
    const elapsed = v.live ? v.elapsedMs + (Date.now() - state.fetchedAt) : v.elapsedMs;
    head.replaceChildren(
      h('div', { class: 'run-head' }, h('h1', {}, v.name), badge(v.status)),
      v.reason ? h('p', { class: 'reason' }, v.reason) : '',
      h('div', { class: 'run-meta' },
        h('span', { id: 'counts' }, `agents: ${v.countsText}`),
        h('span', {}, `spend: ${fmtSpend(v.spend)}`),
        h('span', {}, `started ${fmtTime(v.startedAt)}`),
        h('span', { id: 'elapsed' }, `elapsed ${fmtDuration(elapsed)}`),
        h('span', {}, `run ${v.runId}`)));
    const btns = [];
    if (v.live) btns.push(h('button', { class: 'danger', 'data-action': 'stop', onclick: () => act('stop', 'Stopping the run…') }, 'Stop run'));
    if (!v.live && v.status !== 'completed') btns.push(h('button', { class: 'primary', 'data-action': 'resume', onclick: () => act('resume', 'Resuming…') }, 'Resume'));
    btns.push(h('a', { href: '#/' }, '← all runs'));
    controls.replaceChildren(...btns);
    checkpoints.replaceChildren(...(v.checkpoints || []).map((c) => h('div', { class: 'checkpoint', 'data-checkpoint': c.phaseId },
      h('strong', {}, `Checkpoint before phase ${c.phaseId}: `), c.message,
      c.timeoutAt ? h('div', { class: 'muted' }, `unanswered by ${fmtTime(c.timeoutAt)}: ${c.onTimeout}`) : '',
      h('div', { class: 'toolbar' },
        h('button', { class: 'primary', 'data-action': 'approve', onclick: () => act('approve', 'Approving…', { phaseId: c.phaseId }) }, 'Approve'),
        h('button', { class: 'danger', 'data-action': 'reject', onclick: () => act('reject', 'Rejecting…', { phaseId: c.phaseId }) }, 'Reject')))));
    phases.replaceChildren(...v.phases.map((p) => {
      const bar = h('div', { class: 'progress', role: 'img', 'aria-label': `${p.id}: ${p.countsText}` });
      for (const k of ['succeeded', 'checkFailed', 'failed', 'cancelled', 'skipped', 'running']) {
        const n = p[k] || 0;
        if (!n || !p.total) continue;
        const seg = h('span', { class: `p-${k}`, title: `${n} ${word(k === 'checkFailed' ? 'check_failed' : k)}` });
        seg.style.width = `${(n / p.total) * 100}%`;
        bar.append(seg);
      }
      return h('div', { class: 'phase', 'data-phase': p.id },
        h('div', { class: 'pname', title: `${p.id} — ${p.title}` }, p.id), bar,
        h('div', { class: 'pcount' }, `${word(p.status)} · ${p.countsText}`));
    }));
    dynamic.replaceChildren(...(v.dynamic || []).map((d) => h('div', { class: 'dynamic', 'data-dynamic': d.phaseId },
      h('strong', {}, `${d.phaseId}: `), d.summary,
      d.verdicts && d.verdicts.length ? h('ul', {}, ...d.verdicts.map((x) => h('li', {}, `${x.id} ${x.verdict} (${x.refute}/${x.of} refute): ${x.finding}${x.reason ? ` — ${x.reason}` : ''}`))) : '')));
    if (v.dynamic && v.dynamic.length) dynamic.prepend(h('h2', {}, 'Dynamic phases'));
    if (v.reportHtml !== undefined) {
      const box = h('div');
      box.innerHTML = v.reportHtml; // rendered and escaped by the server (digest/markdown-html.ts)
      report.replaceChildren(h('h2', {}, 'Report'), box);
    } else report.replaceChildren();
  }

  async function act(action, pending, body) {
    const buttons = root.querySelectorAll('button[data-action]');
    buttons.forEach((b) => (b.disabled = true));
    toast(pending);
    try {
      const r = await api(`/api/runs/${encodeURIComponent(runId)}/${action}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body || {}) });
      toast(r.message);
    } catch (e) {
      toast(e.message, true);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
      refreshAll();
    }
  }

  // --- task list
  function visibleRows() {
    const q = taskFilter.value.trim().toLowerCase();
    return q ? state.rows.filter((r) => r.ref.toLowerCase().includes(q) || r.status.includes(q) || word(r.status).includes(q)) : state.rows;
  }

  function rowInfo(r) {
    const bits = [];
    if (r.status !== 'pending') bits.push(word(r.status));
    if (r.attempt > 1) bits.push(`attempt ${r.attempt}`);
    if (r.durationMs !== undefined && r.status !== 'running') bits.push(fmtDuration(r.durationMs));
    return bits.join(' · ');
  }

  function rowEl(r) {
    let el = rowEls.get(r.ref);
    if (!el) {
      el = h('button', { class: 'task', role: 'option', type: 'button', 'data-ref': r.ref },
        h('span', { class: 'dot', 'aria-hidden': 'true' }), h('span', { class: 'ref' }), h('span', { class: 'info' }));
      el.addEventListener('click', () => open(r.ref));
      rowEls.set(r.ref, el);
    }
    const cur = state.byRef.get(r.ref) || r;
    if (el.getAttribute('data-status') !== cur.status) el.setAttribute('data-status', cur.status);
    el.children[1].textContent = cur.ref;
    el.children[2].textContent = rowInfo(cur);
    el.title = cur.cause ? `${cur.ref}: ${cur.cause}` : cur.ref;
    el.setAttribute('aria-current', page.selected === cur.ref ? 'true' : 'false');
    el.setAttribute('aria-selected', page.selected === cur.ref ? 'true' : 'false');
    return el;
  }

  let virtual = false;
  const spacer = h('div');
  function drawRows() {
    const rows = visibleRows();
    taskCount.textContent = `${rows.length} of ${state.rows.length}`;
    virtual = rows.length > VIRTUAL_AFTER;
    list.classList.toggle('virtual', virtual);
    if (!virtual) {
      const els = rows.map(rowEl);
      // Reuse elements in place, so focus and scroll survive a live update.
      let same = list.children.length === els.length;
      for (let i = 0; same && i < els.length; i++) if (list.children[i] !== els[i]) same = false;
      if (!same) list.replaceChildren(...els);
      return;
    }
    spacer.style.height = `${rows.length * ROW_PX}px`;
    const top = list.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_PX) - 10);
    const last = Math.min(rows.length, Math.ceil((top + (list.clientHeight || 600)) / ROW_PX) + 10);
    const els = [];
    for (let i = first; i < last; i++) {
      const el = rowEl(rows[i]);
      el.style.top = `${i * ROW_PX}px`;
      els.push(el);
    }
    const focused = document.activeElement;
    list.replaceChildren(spacer, ...els);
    if (focused && els.includes(focused)) focused.focus({ preventScroll: true });
  }
  list.addEventListener('scroll', () => { if (virtual) drawRows(); }, { passive: true });
  taskFilter.addEventListener('input', drawRows);

  // Arrow keys walk the list (also through rows not drawn yet), Enter opens (buttons do that).
  list.addEventListener('keydown', (e) => {
    const keys = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10, Home: -Infinity, End: Infinity };
    if (!(e.key in keys)) return;
    e.preventDefault();
    const rows = visibleRows();
    if (!rows.length) return;
    const ref = document.activeElement && document.activeElement.getAttribute('data-ref');
    let i = rows.findIndex((r) => r.ref === ref);
    const step = keys[e.key];
    i = step === -Infinity ? 0 : step === Infinity ? rows.length - 1 : Math.min(rows.length - 1, Math.max(0, (i < 0 ? 0 : i) + step));
    if (virtual) {
      const y = i * ROW_PX;
      if (y < list.scrollTop) list.scrollTop = y;
      else if (y + ROW_PX > list.scrollTop + list.clientHeight) list.scrollTop = y + ROW_PX - list.clientHeight;
      drawRows();
    }
    const el = rowEl(rows[i]);
    el.focus();
    if (!virtual) el.scrollIntoView({ block: 'nearest' });
  });

  function open(ref) {
    location.hash = `#/run/${encodeURIComponent(runId)}/${ref.split('/').map(encodeURIComponent).join('/')}`;
  }

  // --- agent pane
  let agentSeq = 0;
  async function drawAgent(opts = {}) {
    const ref = page.selected;
    const seq = ++agentSeq;
    if (!ref) {
      agentPane.replaceChildren(h('p', { class: 'muted' }, 'Select a task to see its prompt, output and attempts.'));
      return;
    }
    const [p, t] = ref.split('/');
    const qs = new URLSearchParams();
    if (opts.attempt) qs.set('attempt', String(opts.attempt));
    let a;
    try {
      a = await api(`/api/runs/${encodeURIComponent(runId)}/agents/${encodeURIComponent(p)}/${encodeURIComponent(t)}?${qs}`);
    } catch (e) {
      if (seq === agentSeq) agentPane.replaceChildren(h('div', { class: 'error-box' }, e.message));
      return;
    }
    if (seq !== agentSeq || closed) return;
    const row = state.byRef.get(ref);
    const status = row ? row.status : a.status || 'pending';
    const live = state.view && state.view.live;
    const agentBtns = [];
    if (live && (status === 'running' || status === 'pending')) {
      agentBtns.push(h('button', { class: 'danger', 'data-action': 'stop-agent', onclick: () => agentAct('stop') }, 'Stop agent'));
    }
    if (status !== 'pending') {
      agentBtns.push(h('button', { 'data-action': 'restart-agent', onclick: () => agentAct('restart') }, live ? 'Restart agent' : 'Run again (resume)'));
    }
    const kids = [h('h2', {}, ref), h('div', { class: 'toolbar' }, badge(status), ...agentBtns)];
    if (a.attempts.length > 1 || (a.attempts.length && a.running)) {
      kids.push(h('div', { class: 'attempts', role: 'group', 'aria-label': 'Attempts' }, ...a.attempts.map((x) => h('button', {
        type: 'button', 'aria-pressed': String(x.attempt === a.attempt), title: x.cause || word(x.status),
        onclick: () => drawAgent({ attempt: x.attempt }),
      }, `#${x.attempt} ${word(x.status)}`))));
    }
    const dl = h('dl');
    const add = (k, v) => { if (v !== undefined && v !== null && v !== '') dl.append(h('dt', {}, k), h('dd', {}, String(v))); };
    add('agent', a.agent + (a.runner ? ` (${a.runner})` : ''));
    if (a.attempt) add('attempt', `${a.attempt} · ${fmtDuration(a.durationMs)} · started ${fmtTime(a.startedAt)}`);
    if (a.running) add('running', `attempt ${a.running.attempt} since ${fmtTime(a.running.startedAt)}`);
    add('exit', a.signal ? `signal ${a.signal}` : a.exitCode);
    if (a.costUsd !== undefined) add('cost', `$${a.costUsd.toFixed(4)}`);
    if (a.usage) add('tokens', `in ${a.usage.inputTokens ?? 0} · out ${a.usage.outputTokens ?? 0}${a.usage.cachedInputTokens ? ` · cached ${a.usage.cachedInputTokens}` : ''}`);
    if (a.outputBytes !== undefined) add('output', `${a.outputBytes} bytes${a.truncated ? ' (stored cut)' : ''}`);
    kids.push(dl);
    if (a.cause) kids.push(h('p', { class: 'cause' }, `cause: ${a.cause}`));
    for (const x of a.attempts) if (x.attempt !== a.attempt && x.cause) kids.push(h('p', { class: 'muted' }, `attempt ${x.attempt} (${word(x.status)}): ${x.cause}`));
    kids.push(h('details', {}, h('summary', {}, 'Prompt'), h('pre', {}, a.prompt || '')));
    if (a.output) {
      const pre = h('pre', { id: 'output', tabindex: '0', 'aria-label': 'Output' }, a.output.text || '(no output)');
      kids.push(h('h3', {}, 'Output'), pre);
      let next = a.output.nextOffset;
      if (next !== null) {
        const more = h('button', { type: 'button' }, `Load more (${a.output.totalChars - next} characters left)`);
        more.addEventListener('click', async () => {
          more.disabled = true;
          try {
            const b = await api(`/api/runs/${encodeURIComponent(runId)}/agents/${encodeURIComponent(p)}/${encodeURIComponent(t)}?attempt=${a.attempt}&offset=${next}`);
            pre.append(b.output.text);
            next = b.output.nextOffset;
            if (next === null) more.remove();
            else { more.textContent = `Load more (${b.output.totalChars - next} characters left)`; more.disabled = false; }
          } catch (e) { toast(e.message, true); more.disabled = false; }
        });
        kids.push(more);
      }
    } else if (status === 'running') {
      kids.push(h('p', { class: 'muted' }, 'Running: its output is stored when it ends.'));
    }
    if (a.structured !== undefined) kids.push(h('details', { open: true }, h('summary', {}, 'Structured answer'), h('pre', {}, JSON.stringify(a.structured, null, 2))));
    else if (a.structuredIn === 'output') kids.push(h('p', { class: 'muted' }, 'Structured answer: the JSON in the output above.'));
    if (a.stderrTail) kids.push(h('details', { open: status !== 'succeeded' }, h('summary', {}, 'stderr (tail)'), h('pre', {}, a.stderrTail)));
    if (a.patch) {
      const diff = h('pre', { class: 'diff' });
      for (const line of a.patch.diff.split('\n')) {
        const cls = line.startsWith('@@') ? 'hunk' : line.startsWith('+') && !line.startsWith('+++') ? 'add' : line.startsWith('-') && !line.startsWith('---') ? 'del' : '';
        diff.append(cls ? h('span', { class: cls }, line) : line, '\n');
      }
      kids.push(h('details', { open: true }, h('summary', {}, `Patch: ${a.patch.files.length} file(s), ${a.patch.bytes} bytes${a.patch.truncated ? ' (cut)' : ''}`), diff));
    }
    agentPane.replaceChildren(...kids);
  }

  async function agentAct(what) {
    const ref = page.selected;
    const [p, t] = ref.split('/');
    toast(`${what === 'stop' ? 'Stopping' : 'Restarting'} ${ref}…`);
    try {
      const r = await api(`/api/runs/${encodeURIComponent(runId)}/agents/${encodeURIComponent(p)}/${encodeURIComponent(t)}/${what}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      toast(r.message);
    } catch (e) {
      toast(e.message, true);
    }
    refreshAll();
    drawAgent();
  }

  function select(ref) {
    page.selected = ref;
    for (const [r, el] of rowEls) el.setAttribute('aria-current', r === ref ? 'true' : 'false');
    drawAgent();
  }

  // --- loading and live updates
  // Answers can arrive out of order; only a newer one replaces what is shown.
  let viewSeq = 0, viewShown = 0, taskSeq = 0, taskShown = 0;
  async function loadView() {
    const seq = ++viewSeq;
    const v = await api(`/api/runs/${encodeURIComponent(runId)}`);
    if (seq < viewShown || closed) return state.view;
    viewShown = seq;
    state.view = v;
    state.fetchedAt = Date.now();
    drawHead();
    return v;
  }
  async function loadTasks() {
    const seq = ++taskSeq;
    const t = await api(`/api/runs/${encodeURIComponent(runId)}/tasks`);
    if (seq < taskShown || closed) return;
    taskShown = seq;
    state.rows = t.rows;
    state.byRef = new Map(t.rows.map((r) => [r.ref, r]));
    drawRows();
  }
  async function loadTimeline() {
    const html = await api(`/api/runs/${encodeURIComponent(runId)}/timeline`);
    if (closed) return;
    tl.innerHTML = html; // rendered and escaped by the server (digest/timeline.ts, as in report.html)
    if (window.fanfoldTimeline) window.fanfoldTimeline();
  }
  const fail = (e) => toast(e.message, true);
  const refreshView = throttle(() => loadView().catch(fail), 1000);
  const refreshTasks = throttle(() => loadTasks().catch(fail), 1500);
  const refreshTimeline = throttle(() => loadTimeline().catch(fail), 1500);
  function refreshAll() { refreshView(); refreshTasks(); refreshTimeline(); }

  tl.addEventListener('click', (e) => {
    const bar = e.target.closest && e.target.closest('.bar');
    if (bar) open(bar.getAttribute('data-bar-ref'));
  });

  function onEvent(ev) {
    const set = (ref, patch) => {
      const r = state.byRef.get(ref);
      if (!r) { refreshTasks(); return; }
      Object.assign(r, patch);
      const el = rowEls.get(ref);
      if (el) rowEl(r);
      if (ref === page.selected && (ev.type === 'agent.finished' || ev.type === 'agent.started')) drawAgent();
    };
    switch (ev.type) {
      case 'agent.started': set(ev.ref, { status: 'running', attempt: ev.attempt }); refreshTimeline(); break;
      case 'agent.finished': set(ev.ref, { status: ev.census && ev.census.checkFailed ? 'check_failed' : ev.status, attempt: ev.attempt, durationMs: ev.durationMs }); refreshTasks(); refreshTimeline(); break;
      case 'agent.skipped': set(ev.ref, { status: 'skipped' }); refreshTasks(); break;
      // The run's status changes on the page only with everything else final (counts, rows, bars).
      // run.json may be written just after this line: read the view until it shows the end.
      case 'run.finished': Promise.all([loadTasks(), loadTimeline()]).then(async () => {
        for (let i = 0; i < 40 && !closed; i++) {
          const v = await loadView();
          if (v && !v.live) return;
          await new Promise((r) => setTimeout(r, 250));
        }
        root.setAttribute('data-run-status', ev.status);
      }).catch(fail); return;
      default: refreshTasks(); refreshTimeline();
    }
    refreshView();
  }

  let es = null;
  function stream(from) {
    es = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events?from=${from}`);
    es.addEventListener('journal', (m) => { try { onEvent(JSON.parse(m.data)); } catch { /* a line the page does not know */ } });
    es.onopen = () => setConn('live');
    es.onerror = () => setConn('down');
  }
  // The clock and the running bars move between journal lines.
  const tick = setInterval(() => {
    if (!state.view || !state.view.live) return;
    const el = document.getElementById('elapsed');
    if (el) el.textContent = `elapsed ${fmtDuration(state.view.elapsedMs + (Date.now() - state.fetchedAt))}`;
  }, 1000);
  const grow = setInterval(() => { if (state.view && state.view.live && state.rows.some((r) => r.status === 'running')) refreshTimeline(); }, 2000);
  onLeave(() => { clearInterval(tick); clearInterval(grow); if (es) es.close(); setConn(''); current = null; });

  (async () => {
    try {
      const v = await loadView();
      await Promise.all([loadTasks(), loadTimeline()]);
      if (!closed) stream(v.journalBytes);
      if (page.selected) drawAgent();
    } catch (e) {
      main.replaceChildren(h('h1', {}, `Run ${runId}`), h('div', { class: 'error-box' }, e.message), h('p', {}, h('a', { href: '#/' }, '← all runs')));
    }
  })();
  return page;
}

// ---------- search ----------

async function showSearch(q) {
  document.title = `Search: ${q} — fanfold`;
  document.getElementById('q').value = q;
  const list = h('ol', { class: 'hits', id: 'hits' });
  const info = h('p', { class: 'muted' }, 'Searching…');
  main.replaceChildren(h('h1', {}, 'Search'), info, list);
  let offset = 0;
  const more = h('button', { type: 'button' }, 'More results');
  async function load() {
    try {
      const page = await api(`/api/search?q=${encodeURIComponent(q)}&limit=20&offset=${offset}`);
      info.textContent = page.total === 0 ? `No output matches “${q}” in ${page.runsSearched} run(s).` : `${page.total} match(es) in ${page.runsSearched} run(s)`;
      for (const hit of page.hits) {
        const href = `#/run/${encodeURIComponent(hit.runId)}/${encodeURIComponent(hit.phaseId)}/${encodeURIComponent(hit.taskId)}`;
        list.append(h('li', { class: 'hit', 'data-hit': hit.ref },
          h('a', { href }, hit.ref), ' ', badge(hit.status),
          h('p', {}, ...snippetNodes(hit.snippet))));
      }
      offset += page.hits.length;
      if (offset < page.total) main.append(more); else more.remove();
    } catch (e) {
      info.textContent = e.message;
    }
  }
  more.addEventListener('click', load);
  await load();
}

route();
