// The function list: every deployed function with its replicas and live figures, refreshed
// every few seconds, filtered by name as you type.

import { listFunctions } from '../api.js';
import { h, replace, keepFocus, ago, chip, empty, errorBox, fmtCount, fmtPercent, fmtRate, functionHref, loading, metricLabel, shortDigest, DEFAULT_NAMESPACE } from '../dom.js';
import { sampler, WINDOW } from '../metrics.js';

/** How often the list is read again, in milliseconds. */
const REFRESH = 5000;

/** Where a function's template can be read from, when its deployment says. */
const TEMPLATE_KEYS = ['com.openfaas.template', 'ironfaas.template', 'template', 'lang'];

/** The function's template if its labels or annotations name it, else null. */
export function templateOf(fn) {
  for (const key of TEMPLATE_KEYS) {
    const v = (fn.annotations && fn.annotations[key]) || (fn.labels && fn.labels[key]);
    if (v) return v;
  }
  return null;
}

/** A chip for ready/desired replicas. */
export function replicasChip(fn) {
  const desired = fn.replicas || 0;
  const ready = fn.availableReplicas || 0;
  const text = `${ready}/${desired}`;
  if (desired === 0) return chip(ready ? text : '0/0 · idle', '', { title: 'Scaled to zero: the next call starts a replica' });
  if (ready >= desired) return chip(text, 'ok', { title: `${ready} of ${desired} replicas ready` });
  if (ready === 0) return chip(text, 'err', { title: `none of ${desired} replicas ready` });
  return chip(text, 'warn', { title: `${ready} of ${desired} replicas ready` });
}

function row(fn) {
  const label = metricLabel(fn.name, fn.namespace);
  const figures = sampler.recent(label);
  const template = templateOf(fn);
  const namespace = fn.namespace && fn.namespace !== DEFAULT_NAMESPACE ? fn.namespace : null;
  const errorRate = figures ? figures.errorRate : null;
  return h(
    'tr',
    { dataset: { function: fn.name } },
    h('td', { class: 'primary', 'data-label': 'Function' }, h('a', { class: 'fn-name', href: functionHref(fn.name, fn.namespace), dataset: { focusKey: `fn:${label}` } }, fn.name), namespace ? h('div', { class: 'secondary' }, namespace) : null),
    h(
      'td',
      { 'data-label': 'Image' },
      h(
        'div',
        {},
        h('div', { class: 'image-line' }, template ? chip(template, 'plain', { title: 'Template' }) : null, h('span', { class: 'mono' }, fn.image)),
        fn.digest ? h('div', { class: 'secondary mono', title: fn.digest }, shortDigest(fn.digest)) : null,
      ),
    ),
    h('td', { 'data-label': 'Replicas' }, replicasChip(fn)),
    h('td', { class: 'num', 'data-label': 'Invocations' }, fmtCount(fn.invocationCount)),
    h('td', { class: 'num', 'data-label': 'Req/s' }, figures ? fmtRate(figures.rps) : '—'),
    h('td', { class: 'num', 'data-label': 'Errors' }, errorRate ? h('span', { class: errorRate >= 0.05 ? 'text-err' : 'text-warn' }, fmtPercent(errorRate)) : fmtPercent(errorRate)),
    h('td', { class: 'num', 'data-label': 'Cold starts' }, fmtCount(fn.coldStarts)),
    h('td', { 'data-label': 'Last call' }, ago(fn.lastInvocation)),
  );
}

function summary(functions) {
  let desired = 0;
  let ready = 0;
  let rps = 0;
  let calls = 0;
  let errors = 0;
  let sampled = false;
  for (const fn of functions) {
    desired += fn.replicas || 0;
    ready += fn.availableReplicas || 0;
    const f = sampler.recent(metricLabel(fn.name, fn.namespace));
    if (f) {
      sampled = true;
      rps += f.rps || 0;
      calls += f.calls;
      errors += f.errors;
    }
  }
  const stat = (label, value, note) => h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), note ? h('div', { class: 'stat-note' }, note) : null);
  const minutes = Math.round(WINDOW / 60000);
  return [
    stat('Functions', fmtCount(functions.length)),
    stat('Replicas ready', `${ready}/${desired}`),
    stat('Requests/s', sampled ? fmtRate(rps) : '—', `last ${minutes} min`),
    stat('Error rate', sampled && calls ? fmtPercent(errors / calls) : '—', `non-2xx, last ${minutes} min`),
  ];
}

/** Renders the list into root. */
export function render(root, { query }) {
  let functions = null;
  let failure = null;
  let updatedAt = null;
  const filter = h('input', { type: 'search', class: 'search', placeholder: 'Filter by name', 'aria-label': 'Filter functions by name', value: query.get('q') || '' });
  const stats = h('div', { class: 'stats' });
  const body = h('div', {}, loading('Loading functions…'));
  const updated = h('span', { class: 'updated', 'aria-live': 'off' });
  const errorSlot = h('div');

  root.append(
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Functions'), h('div', { class: 'sub' }, 'Everything deployed on this gateway, refreshed every few seconds.')),
      h('div', { class: 'page-actions' }, filter, h('a', { class: 'btn btn-primary', href: '/ui/deploy' }, 'Deploy function')),
    ),
    errorSlot,
    stats,
    h('section', { class: 'card', 'aria-labelledby': 'fn-table-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'fn-table-title' }, 'Deployed functions'), updated), h('div', { class: 'card-body flush' }, body)),
  );

  function draw() {
    replace(errorSlot, failure ? errorBox(failure, functions ? 'Showing the last list read; retrying every few seconds.' : null) : null);
    if (!functions) {
      if (failure) replace(body, empty({ title: 'Cannot list the functions', text: 'Retrying every few seconds.', small: true }));
      return;
    }
    replace(stats, summary(functions));
    updated.textContent = updatedAt ? `Updated ${new Date(updatedAt).toLocaleTimeString('en-GB', { hour12: false })}` : '';
    if (!functions.length) {
      replace(
        body,
        empty({
          icon: 'λ',
          title: 'No functions yet',
          text: 'Deploy one from the function store, or run "ironfaas up" in a project folder.',
          action: h('a', { class: 'btn btn-primary', href: '/ui/deploy' }, 'Deploy from the store'),
        }),
      );
      return;
    }
    const needle = filter.value.trim().toLowerCase();
    const shown = functions.filter((fn) => fn.name.toLowerCase().includes(needle));
    if (!shown.length) {
      replace(body, empty({ title: `No function matches “${filter.value.trim()}”`, text: `${functions.length} function${functions.length === 1 ? '' : 's'} deployed; clear the filter to see them.`, small: true }));
      return;
    }
    const head = ['Function', 'Image', 'Replicas', 'Invocations', 'Req/s', 'Errors', 'Cold starts', 'Last call'];
    const numeric = new Set(['Invocations', 'Req/s', 'Errors', 'Cold starts']);
    keepFocus(body, () => replace(
      body,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'responsive', id: 'functions-table' },
          h('caption', { class: 'visually-hidden' }, `Deployed functions; rates and errors over the last ${Math.round(WINDOW / 60000)} minutes`),
          h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', class: numeric.has(c) ? 'num' : null }, c)))),
          h('tbody', {}, shown.map(row)),
        ),
      ),
    ));
  }

  async function load() {
    try {
      const list = await listFunctions();
      list.sort((a, b) => a.name.localeCompare(b.name) || (a.namespace || '').localeCompare(b.namespace || ''));
      functions = list;
      failure = null;
      updatedAt = Date.now();
    } catch (e) {
      failure = e;
    }
    draw();
  }

  filter.addEventListener('input', () => {
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set('q', filter.value);
    else url.searchParams.delete('q');
    history.replaceState(null, '', url.pathname + url.search);
    draw();
  });

  load();
  const timer = setInterval(load, REFRESH);
  const unsubscribe = sampler.subscribe(draw);
  return {
    title: 'Functions',
    cleanup() {
      clearInterval(timer);
      unsubscribe();
    },
  };
}
