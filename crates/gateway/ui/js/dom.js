// Small DOM and formatting helpers shared by every page. Elements are built with h(); text
// always goes in as text nodes, never as HTML, so names and log lines cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (nodes, strings, numbers, arrays; null and false are skipped). */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h('a', {href: '/ui/'}, 'Home'). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces every child of el. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * Runs draw (which rebuilds part of container) and gives focus back to the element with the
 * same data-focus-key, so a refresh does not throw a keyboard user out of a table.
 */
export function keepFocus(container, draw) {
  const active = document.activeElement;
  const key = active && container.contains(active) && active.dataset ? active.dataset.focusKey : null;
  draw();
  if (!key) return;
  const again = [...container.querySelectorAll('[data-focus-key]')].find((el) => el.dataset.focusKey === key);
  if (again) again.focus({ preventScroll: true });
}

/** The default namespace of the local provider, left out of URLs and labels. */
export const DEFAULT_NAMESPACE = 'openfaas-fn';

/** `name.namespace`, the label the gateway's metrics use. */
export function metricLabel(name, namespace) {
  return `${name}.${namespace || DEFAULT_NAMESPACE}`;
}

/** The portal URL of a function's page. */
export function functionHref(name, namespace) {
  const ns = namespace && namespace !== DEFAULT_NAMESPACE ? `?namespace=${encodeURIComponent(namespace)}` : '';
  return `/ui/functions/${encodeURIComponent(name)}${ns}`;
}

/** A count: 1234 -> "1,234". */
export function fmtCount(n) {
  return Number(n || 0).toLocaleString('en-US');
}

/** Requests per second with a sensible precision; null -> "—". */
export function fmtRate(r) {
  if (r === null || r === undefined || Number.isNaN(r)) return '—';
  if (r === 0) return '0';
  if (r < 0.1) return r.toFixed(3);
  if (r < 10) return r.toFixed(2);
  return r.toFixed(1);
}

/** A ratio as a percentage; null -> "—". */
export function fmtPercent(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (x === 0) return '0%';
  const p = x * 100;
  return `${p < 1 ? p.toFixed(2) : p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}

/** Seconds as a latency: 0.0123 -> "12.3 ms"; null -> "—". */
export function fmtLatency(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '—';
  if (s < 0.001) return `${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : s < 0.1 ? 1 : 0)} ms`;
  return `${s.toFixed(2)} s`;
}

/** Milliseconds as a duration: 1234 -> "1.23 s". */
export function fmtMillis(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Bytes: 1536 -> "1.5 KiB". */
export function fmtBytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** A Date from an RFC 3339 string or unix milliseconds; null when unknown or zero. */
export function toDate(value) {
  if (value === null || value === undefined || value === '' || value === 0) return null;
  const d = typeof value === 'number' ? new Date(value) : new Date(value);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1971) return null;
  return d;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago"; "—" when unknown. */
export function fmtAgo(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return '—';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A full local timestamp for tooltips and tables. */
export function fmtTime(value) {
  const d = toDate(value);
  return d ? d.toLocaleString('en-GB', { hour12: false }) : '—';
}

/** A <time> element showing "x ago" with the exact time as its tooltip. */
export function ago(value) {
  const d = toDate(value);
  if (!d) return h('span', { class: 'text-muted' }, '—');
  return h('time', { datetime: d.toISOString(), title: fmtTime(d) }, fmtAgo(d));
}

/** "sha256:0123456789ab…" -> "0123456789ab". */
export function shortDigest(digest) {
  if (!digest) return '';
  const hex = digest.includes(':') ? digest.split(':')[1] : digest;
  return hex.slice(0, 12);
}

/** A status chip: kind is ok, warn, err, info or plain. */
export function chip(text, kind = '', attrs = {}) {
  return h('span', { ...attrs, class: `chip${kind ? ` chip-${kind}` : ''}` }, kind && kind !== 'plain' ? h('span', { class: 'dot', 'aria-hidden': 'true' }) : null, text);
}

/** The chip kind for an HTTP status code. */
export function statusKind(status) {
  if (status >= 200 && status < 300) return 'ok';
  if (status >= 300 && status < 400) return 'info';
  if (status >= 400 && status < 500) return 'warn';
  return 'err';
}

/** The chip kind for a replica or job state. */
export function stateKind(state) {
  switch (state) {
    case 'ready':
    case 'succeeded':
      return 'ok';
    case 'starting':
    case 'queued':
    case 'running':
      return 'info';
    case 'draining':
    case 'retrying':
    case 'backoff':
      return 'warn';
    case 'failed':
    case 'deadLettered':
      return 'err';
    default:
      return '';
  }
}

/** A loading line with a spinner. */
export function loading(text = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

/** An error box; a retrying page says so. */
export function errorBox(error, note) {
  return h('div', { class: 'alert alert-error', role: 'alert' }, h('strong', {}, error.title || 'Something went wrong'), ': ', error.message, note ? h('div', { class: 'text-muted' }, note) : null);
}

/** An empty state: icon, title, text and an optional action. */
export function empty({ icon = '∅', title, text, action, small = false }) {
  return h('div', { class: `empty${small ? ' small' : ''}` }, small ? null : h('div', { class: 'empty-icon', 'aria-hidden': 'true' }, icon), h('h2', {}, title), text ? h('p', {}, text) : null, action || null);
}

/** Shows a short message in the corner (and to screen readers). */
export function toast(message, kind = '') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast ${kind}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

/**
 * Asks to confirm with a modal dialog; resolves to true when the danger button is pressed.
 * Escape and Cancel resolve to false. Focus starts on Cancel, the safe choice.
 */
export function confirmDialog({ title, text, confirm = 'Confirm' }) {
  return new Promise((resolve) => {
    const cancelBtn = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    const okBtn = h('button', { type: 'button', class: 'btn btn-danger-solid', value: 'confirm' }, confirm);
    const dialog = h(
      'dialog',
      { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
      h('div', { class: 'dialog-body' }, h('h2', { id: 'confirm-title' }, title), h('p', { id: 'confirm-text' }, text)),
      h('div', { class: 'dialog-actions' }, cancelBtn, okBtn),
    );
    let answer = false;
    cancelBtn.addEventListener('click', () => dialog.close());
    okBtn.addEventListener('click', () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelBtn.focus();
  });
}

/** Parses "KEY=value" (or "Name: value" with sep ':') lines; throws on a line without sep. */
export function parsePairs(text, sep, what) {
  const out = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const at = line.indexOf(sep);
    if (at <= 0) throw new Error(`${what}, line ${i + 1}: "${line}" has no "${sep}" (write ${sep === ':' ? 'Name: value' : 'KEY=value'})`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  });
  return out;
}
