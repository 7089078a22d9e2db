// One function: live figures and charts, an invoke form (sync or async), its replicas, its
// logs (followed live), its spec, and the scale and remove actions.

import { getFunction, invoke, removeFunction, scaleFunction, streamLogs } from '../api.js';
import { followCall, rememberCall, describeJob, FINAL } from '../calls.js';
import { LineChart } from '../chart.js';
import {
  h, replace, ago, chip, confirmDialog, empty, errorBox, fmtBytes, fmtCount, fmtLatency, fmtMillis, fmtPercent, fmtRate, fmtTime,
  loading, metricLabel, parsePairs, stateKind, statusKind, toast, DEFAULT_NAMESPACE,
} from '../dom.js';
import { sampler, KEEP, SAMPLE_EVERY, WINDOW } from '../metrics.js';
import { navigate } from '../app.js';
import { replicasChip, templateOf } from './functions.js';

/** How often the function's status is read again, in milliseconds. */
const REFRESH = 3000;
/** Log lines kept on screen. */
const MAX_LINES = 1000;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

function stat(label, value, note) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), note ? h('div', { class: 'stat-note' }, note) : null);
}

function kvTable(map, what) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('span', { class: 'text-muted' }, `no ${what}`);
  return h('table', { class: 'kv' }, h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v)))));
}

function resources(r) {
  if (!r || (!r.memory && !r.cpu)) return h('span', { class: 'text-muted' }, 'none');
  return [r.memory ? `memory ${r.memory}` : null, r.cpu ? `cpu ${r.cpu}` : null].filter(Boolean).join(', ');
}

function specList(fn) {
  const template = templateOf(fn);
  const rows = [
    ['Image', h('span', { class: 'mono' }, fn.image)],
    ['Digest', fn.digest ? h('span', { class: 'mono' }, fn.digest) : h('span', { class: 'text-muted' }, 'unknown')],
    template ? ['Template', template] : null,
    ['Namespace', fn.namespace || DEFAULT_NAMESPACE],
    ['Created', h('span', {}, fmtTime(fn.createdAt), ' (', ago(fn.createdAt), ')')],
    ['Start command', fn.envProcess ? h('code', {}, fn.envProcess) : h('span', { class: 'text-muted' }, "the template's")],
    ['Limits', resources(fn.limits)],
    ['Requests', resources(fn.requests)],
    fn.readOnlyRootFilesystem ? ['Root filesystem', 'read-only'] : null,
    ['Secrets', fn.secrets && fn.secrets.length ? h('div', { class: 'chips' }, fn.secrets.map((s) => chip(s, 'plain'))) : h('span', { class: 'text-muted' }, 'none')],
    ['Environment', kvTable(fn.envVars, 'variables')],
    ['Labels', kvTable(fn.labels, 'labels')],
    ['Annotations', kvTable(fn.annotations, 'annotations')],
  ].filter(Boolean);
  return h('dl', { class: 'spec' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** "unix:/var/lib/ironfaas/run/echo-1.sock" -> "unix:…/echo-1.sock"; TCP endpoints as they are. */
function shortEndpoint(endpoint) {
  const m = /^unix:(.*\/)([^/]+)$/.exec(endpoint);
  return m && endpoint.length > 24 ? `unix:…/${m[2]}` : endpoint;
}

function instancesTable(fn) {
  const instances = fn.instances || [];
  if (!instances.length) {
    return empty({
      title: fn.replicas ? 'No replica is running yet' : 'Scaled to zero',
      text: fn.replicas ? 'Replicas appear here as they start.' : 'The next call starts a replica; or scale up above.',
      small: true,
    });
  }
  const head = ['Replica', 'State', 'PID', 'Started', 'Restarts', 'In flight'];
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'responsive', id: 'instances-table' },
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', class: c === 'Restarts' || c === 'In flight' || c === 'PID' ? 'num' : null }, c)))),
      h(
        'tbody',
        {},
        instances.map((i) =>
          h(
            'tr',
            {},
            h('td', { class: 'primary', 'data-label': 'Replica' }, h('div', { class: 'mono' }, i.name), i.endpoint ? h('div', { class: 'mono secondary endpoint', title: i.endpoint }, shortEndpoint(i.endpoint)) : null),
            h('td', { 'data-label': 'State' }, chip(i.state, stateKind(i.state))),
            h('td', { class: 'num', 'data-label': 'PID' }, i.pid || '—'),
            h('td', { 'data-label': 'Started' }, ago(i.startedAt)),
            h('td', { class: 'num', 'data-label': 'Restarts' }, fmtCount(i.restarts)),
            h('td', { class: 'num', 'data-label': 'In flight' }, fmtCount(i.inflight)),
          ),
        ),
      ),
    ),
  );
}

/** Pretty-prints JSON bodies; everything else is shown as it came. */
function showBody(text, headers) {
  const type = (headers.find(([k]) => k === 'content-type') || [])[1] || '';
  if (!text) return h('div', { class: 'text-muted' }, '(empty body)');
  let shown = text;
  if (/json/.test(type)) {
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      shown = text;
    }
  }
  if (shown.length > 65536) shown = `${shown.slice(0, 65536)}\n… (${fmtBytes(text.length)} in all; cut here)`;
  return h('pre', { class: 'response-body', tabindex: '0', 'aria-label': 'Response body' }, shown);
}

/** The invoke form and its result; returns {el, stop}. */
function invokePanel(fn) {
  let stopFollow = null;
  const sync = h('input', { type: 'radio', name: 'mode', value: 'sync', checked: true });
  const asyncMode = h('input', { type: 'radio', name: 'mode', value: 'async' });
  const method = h('select', { id: 'invoke-method', name: 'method' }, METHODS.map((m) => h('option', { value: m, selected: m === 'POST' }, m)));
  const path = h('input', { type: 'text', id: 'invoke-path', name: 'path', placeholder: '/ (optional sub-path and ?query)', autocomplete: 'off', spellcheck: 'false' });
  const headers = h('textarea', { id: 'invoke-headers', name: 'headers', rows: '2', placeholder: 'Content-Type: application/json', spellcheck: 'false' });
  const body = h('textarea', { id: 'invoke-body', name: 'body', rows: '4', placeholder: 'Request body', spellcheck: 'false' });
  const send = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Send');
  const result = h('div', { class: 'result-slot', 'aria-live': 'polite' });

  const form = h(
    'form',
    { id: 'invoke-form', 'aria-labelledby': 'invoke-title' },
    h('div', { class: 'fields' },
      h('div', { class: 'field' }, h('span', { class: 'visually-hidden', id: 'mode-label' }, 'Mode'), h('div', { class: 'segmented', role: 'radiogroup', 'aria-labelledby': 'mode-label' }, h('label', {}, sync, 'Sync'), h('label', {}, asyncMode, 'Async'))),
      h('div', { class: 'invoke-row' },
        h('div', { class: 'field' }, h('label', { for: 'invoke-method' }, 'Method'), method),
        h('div', { class: 'field' }, h('label', { for: 'invoke-path' }, 'Path'), path)),
      h('div', { class: 'field' }, h('label', { for: 'invoke-headers' }, 'Headers ', h('span', { class: 'help' }, 'one "Name: value" per line')), headers),
      h('div', { class: 'field' }, h('label', { for: 'invoke-body' }, 'Body'), body)),
    h('div', { class: 'form-actions' }, send, h('span', { class: 'updated' }, 'Ctrl+Enter sends')),
    result,
  );

  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  function showSync(r) {
    const size = new TextEncoder().encode(r.body).length;
    replace(
      result,
      h('div', { class: 'result', id: 'invoke-result', dataset: { status: String(r.status) } },
        h('div', { class: 'result-line' },
          chip(`${r.status} ${r.statusText}`.trim(), statusKind(r.status), { id: 'invoke-status' }),
          h('span', { id: 'invoke-duration' }, fmtMillis(r.took)),
          h('span', { class: 'text-muted' }, fmtBytes(size))),
        h('details', {}, h('summary', {}, `Response headers (${r.headers.length})`), h('ul', { class: 'headers-list' }, r.headers.map(([k, v]) => h('li', {}, h('b', {}, `${k}: `), v)))),
        showBody(r.body, r.headers)),
    );
  }

  function showAsync(r, fnLabel) {
    if (r.status !== 202 || !r.callId) {
      showSync(r);
      return;
    }
    rememberCall(r.callId, fnLabel);
    const state = h('span', { id: 'async-state' }, chip('queued', 'info'));
    const detail = h('span', { class: 'text-muted', id: 'async-detail' });
    replace(
      result,
      h('div', { class: 'result', id: 'invoke-result', dataset: { status: String(r.status) } },
        h('div', { class: 'result-line' }, chip('202 Accepted', 'ok', { id: 'invoke-status' }), h('span', {}, 'call id ', h('code', { id: 'async-call-id' }, r.callId)), h('span', { id: 'invoke-duration' }, fmtMillis(r.took))),
        h('div', { class: 'result-line' }, h('span', {}, 'State'), state, detail),
        h('a', { href: `/ui/async?call=${encodeURIComponent(r.callId)}` }, 'Open in the async view')),
    );
    stopFollow = followCall(r.callId, {
      onRecord(record) {
        const name = record ? record.state : 'queued';
        replace(state, chip(name, stateKind(name), { dataset: { state: name } }));
        replace(detail, describeJob(record));
        if (record && FINAL.has(record.state)) toast(`Call ${r.callId.slice(0, 8)}… ${record.state}`);
      },
      onError(e) {
        replace(detail, h('span', { class: 'text-err' }, e.message));
      },
    });
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (stopFollow) stopFollow();
    stopFollow = null;
    let headerMap;
    try {
      headerMap = parsePairs(headers.value, ':', 'Headers');
      headers.removeAttribute('aria-invalid');
    } catch (err) {
      headers.setAttribute('aria-invalid', 'true');
      replace(result, h('div', { class: 'alert alert-error result', role: 'alert' }, err.message));
      return;
    }
    const isAsync = asyncMode.checked;
    send.disabled = true;
    replace(result, loading(isAsync ? 'Queueing the call…' : 'Calling…'));
    try {
      const r = await invoke({ name: fn.name, namespace: fn.namespace, method: method.value, path: path.value, headers: headerMap, body: body.value, async: isAsync });
      if (isAsync) showAsync(r, metricLabel(fn.name, fn.namespace));
      else showSync(r);
    } catch (err) {
      replace(result, h('div', { class: 'alert alert-error result', role: 'alert' }, err.message));
    } finally {
      send.disabled = false;
    }
  });

  const el = h('section', { class: 'card', 'aria-labelledby': 'invoke-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'invoke-title' }, 'Invoke'), h('span', { class: 'hint' }, 'Calls go through this gateway')), h('div', { class: 'card-body' }, form));
  return {
    el,
    stop() {
      if (stopFollow) stopFollow();
    },
  };
}

/** The log panel: the last lines, followed live when the switch is on. */
function logsPanel(fn) {
  let abort = null;
  let retry = null;
  let count = 0;
  const follow = h('input', { type: 'checkbox', role: 'switch', id: 'logs-follow', checked: true });
  const status = h('span', { class: 'log-status', id: 'logs-status' });
  const lines = h('ol', { class: 'logs', id: 'logs', role: 'log', 'aria-label': `Log lines of ${fn.name}`, tabindex: '0' });
  const clear = h('button', { type: 'button', class: 'btn btn-small' }, 'Clear');
  const reload = h('button', { type: 'button', class: 'btn btn-small' }, 'Reload');

  function setStatus(text, live) {
    lines.dataset.state = live ? 'live' : 'idle';
    replace(status, live ? h('span', { class: 'live-dot', 'aria-hidden': 'true' }) : null, text);
  }

  function note(text) {
    lines.append(h('li', { class: 'note' }, text));
  }

  function add(entry) {
    if (count === 0) lines.replaceChildren();
    count += 1;
    const atBottom = lines.scrollHeight - lines.scrollTop - lines.clientHeight < 24;
    const d = new Date(entry.timestamp);
    const ts = Number.isNaN(d.getTime()) ? entry.timestamp : `${d.toLocaleTimeString('en-GB', { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
    lines.append(h('li', {}, h('span', { class: 'ts', title: entry.timestamp }, ts), h('span', { class: 'inst' }, entry.instance), entry.text));
    while (lines.childElementCount > MAX_LINES) lines.firstElementChild.remove();
    if (atBottom) lines.scrollTop = lines.scrollHeight;
  }

  async function start() {
    if (abort) abort.abort();
    clearTimeout(retry);
    const controller = new AbortController();
    abort = controller;
    const following = follow.checked;
    count = 0;
    lines.replaceChildren();
    setStatus(following ? 'Connecting…' : 'Loading…', false);
    try {
      await streamLogs({
        name: fn.name,
        namespace: fn.namespace,
        tail: 200,
        follow: following,
        signal: controller.signal,
        onOpen() {
          if (following) setStatus('Following', true);
        },
        onEntry: add,
      });
      if (controller.signal.aborted) return;
      if (count === 0) note('No log lines yet. What the function writes to stdout or stderr shows up here.');
      if (following) {
        setStatus('The log stream ended; reconnecting…', false);
        retry = setTimeout(start, 3000);
      } else {
        setStatus(`Last ${count} line${count === 1 ? '' : 's'} · not following`, false);
      }
    } catch (e) {
      if (e.name === 'AbortError') return;
      setStatus('', false);
      lines.replaceChildren(h('li', { class: 'note' }, `Cannot read the logs: ${e.message}`));
      if (following) retry = setTimeout(start, 5000);
    }
  }

  follow.addEventListener('change', start);
  reload.addEventListener('click', start);
  clear.addEventListener('click', () => {
    count = 0;
    lines.replaceChildren();
  });
  start();

  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'logs-title' },
    h('div', { class: 'card-head' }, h('div', { class: 'title-group' }, h('h2', { id: 'logs-title' }, 'Logs'), status), h('div', { class: 'page-actions' }, h('label', { class: 'switch' }, follow, 'Follow'), reload, clear)),
    lines,
  );
  return {
    el,
    stop() {
      clearTimeout(retry);
      if (abort) abort.abort();
    },
  };
}

/** The scale control: − [n] +, applied on the buttons, Enter or leaving the field. */
function scaleControl(fn, onScaled) {
  let desired = fn.replicas || 0;
  const input = h('input', { type: 'number', min: '0', max: '100', step: '1', id: 'scale-input', value: String(desired), 'aria-label': 'Desired replicas', inputmode: 'numeric' });
  const minus = h('button', { type: 'button', class: 'btn btn-icon', 'aria-label': 'Remove one replica', title: 'Remove one replica' }, '−');
  const plus = h('button', { type: 'button', class: 'btn btn-icon', 'aria-label': 'Add one replica', title: 'Add one replica' }, '+');
  let busy = false;

  async function scaleTo(n) {
    if (busy || !Number.isInteger(n) || n < 0) {
      input.value = String(desired);
      return;
    }
    if (n === desired) return;
    busy = true;
    for (const el of [minus, plus, input]) el.disabled = true;
    try {
      await scaleFunction(fn.name, fn.namespace, n);
      desired = n;
      toast(`Scaling ${fn.name} to ${n} replica${n === 1 ? '' : 's'}`);
      onScaled();
    } catch (e) {
      toast(`Cannot scale ${fn.name}: ${e.message}`, 'error');
    } finally {
      busy = false;
      for (const el of [minus, plus, input]) el.disabled = false;
      input.value = String(desired);
    }
  }

  minus.addEventListener('click', () => scaleTo(Math.max(0, desired - 1)));
  plus.addEventListener('click', () => scaleTo(desired + 1));
  input.addEventListener('change', () => scaleTo(Number(input.value)));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      scaleTo(Number(input.value));
    }
  });

  return {
    el: h('div', { class: 'scale', role: 'group', 'aria-label': 'Replicas' }, minus, input, plus),
    update(f) {
      if (busy) return;
      desired = f.replicas || 0;
      if (document.activeElement !== input) input.value = String(desired);
    },
  };
}

/** Renders the page of function `name` into root. */
export function render(root, { name, namespace }) {
  const stops = [];
  let fn = null;
  let timer = null;
  const label = metricLabel(name, namespace);
  const spanMinutes = Math.round(KEEP / 60000);

  const status = h('span', {});
  const image = h('div', { class: 'sub mono' });
  const actions = h('div', { class: 'page-actions' });
  const body = h('div', {}, loading(`Loading ${name}…`));
  root.append(
    h('div', { class: 'crumbs' }, h('a', { href: '/ui/' }, 'Functions'), ' / ', name),
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, name, status), image), actions),
    body,
  );

  const rpsChart = new LineChart({
    title: 'Requests per second',
    series: [{ key: 'rps', name: 'all' }, { key: 'errRps', name: 'errors' }],
    format: fmtRate,
    axis: (v) => `${+v.toPrecision(3)}`,
    floor: 0.1,
    emptyText: `Collecting… one point every ${SAMPLE_EVERY / 1000} s`,
  });
  const latencyChart = new LineChart({
    title: 'Latency',
    series: [{ key: 'p50', name: 'p50' }, { key: 'p99', name: 'p99' }],
    format: fmtLatency,
    axis: (v) => (v >= 1 ? `${+v.toPrecision(3)} s` : `${+(v * 1000).toPrecision(3)} ms`),
    floor: 0.01,
    emptyText: 'No calls in this span',
  });
  stops.push(() => rpsChart.destroy(), () => latencyChart.destroy());

  const stats = h('div', { class: 'stats', id: 'fn-stats' });
  const instances = h('div', {});
  const spec = h('div', {});
  const gone = h('div', {});

  function drawFigures() {
    const f = sampler.recent(label);
    const minutes = Math.round(WINDOW / 60000);
    const note = `last ${minutes} min`;
    replace(
      stats,
      stat('Requests/s', f ? fmtRate(f.rps) : '—', note),
      stat('Error rate', f ? fmtPercent(f.errorRate) : '—', 'non-2xx'),
      stat('p50 latency', f ? fmtLatency(f.p50) : '—', note),
      stat('p99 latency', f ? fmtLatency(f.p99) : '—', note),
      stat('Invocations', fn ? fmtCount(fn.invocationCount) : '—', 'since the gateway started'),
      stat('Cold starts', fn ? fmtCount(fn.coldStarts) : '—', fn && fn.lastInvocation ? ['last call ', ago(fn.lastInvocation)] : 'no call yet'),
    );
    const points = sampler.series(label);
    const since = sampler.since();
    const span = Math.min(KEEP, Math.max(60000, since ? Date.now() - since : 0));
    rpsChart.update(points, span);
    latencyChart.update(points, span);
  }

  function layout() {
    const scale = scaleControl(fn, refresh);
    const remove = h('button', { type: 'button', class: 'btn btn-danger', id: 'remove-function' }, 'Remove');
    remove.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: `Remove ${fn.name}?`,
        text: `Its replicas stop and calls to it answer 404. Its bundle stays in the function store, so it can be deployed again.`,
        confirm: 'Remove function',
      });
      if (!ok) return;
      remove.disabled = true;
      try {
        await removeFunction(fn.name, fn.namespace);
        toast(`Removed ${fn.name}`);
        navigate('/ui/');
      } catch (e) {
        remove.disabled = false;
        toast(`Cannot remove ${fn.name}: ${e.message}`, 'error');
      }
    });
    const invokeBox = invokePanel(fn);
    const logs = logsPanel(fn);
    stops.push(invokeBox.stop, logs.stop);
    replace(actions, h('span', { class: 'text-muted' }, 'Replicas'), scale.el, remove);
    replace(
      body,
      gone,
      stats,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'traffic-title' },
        h('div', { class: 'card-head' }, h('h2', { id: 'traffic-title' }, 'Traffic'), h('span', { class: 'hint' }, `up to ${spanMinutes} minutes, sampled every ${SAMPLE_EVERY / 1000} s while the portal is open`)),
        h('div', { class: 'card-body charts' }, rpsChart.el, latencyChart.el),
      ),
      h(
        'div',
        { class: 'grid-2 section' },
        invokeBox.el,
        h(
          'div',
          { class: 'stack' },
          h('section', { class: 'card', 'aria-labelledby': 'replicas-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'replicas-title' }, 'Replicas')), h('div', { class: 'card-body flush' }, instances)),
          h('section', { class: 'card', 'aria-labelledby': 'spec-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'spec-title' }, 'Spec')), h('div', { class: 'card-body' }, spec)),
        ),
      ),
      logs.el,
    );
    logs.el.classList.add('section');
    return scale;
  }

  let scale = null;
  function drawStatus() {
    replace(status, replicasChip(fn));
    replace(image, fn.image);
    replace(instances, instancesTable(fn));
    replace(spec, specList(fn));
    if (scale) scale.update(fn);
    drawFigures();
  }

  async function refresh() {
    try {
      const next = await getFunction(name, namespace);
      if (!next) {
        if (!fn) {
          replace(body, empty({ icon: '?', title: `No function named ${name}`, text: namespace ? `Nothing by that name in namespace ${namespace}.` : 'It may have been removed.', action: h('a', { class: 'btn', href: '/ui/' }, 'Back to functions') }));
          clearInterval(timer);
          return;
        }
        replace(gone, h('div', { class: 'alert alert-error', role: 'alert' }, `${name} no longer exists: it was removed.`));
        return;
      }
      const first = !fn;
      fn = next;
      replace(gone);
      if (first) scale = layout();
      drawStatus();
    } catch (e) {
      if (!fn) replace(body, errorBox(e, 'Retrying every few seconds.'));
      else replace(gone, errorBox(e, 'Showing the last status read; retrying.'));
    }
  }

  refresh();
  timer = setInterval(refresh, REFRESH);
  stops.push(sampler.subscribe(() => fn && drawFigures()));
  return {
    title: name,
    cleanup() {
      clearInterval(timer);
      for (const stop of stops) stop();
    },
  };
}
