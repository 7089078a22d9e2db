// Asynchronous calls: queue depth per function, the calls this tab made and how they ended,
// a look-up by call id, and the dead letters with replay (one or all) and discard.

import { deadLetters, discardJob, getJob, queueDepth, replayAllJobs, replayJob } from '../api.js';
import { describeJob, recentCalls, FINAL } from '../calls.js';
import { h, replace, keepFocus, ago, chip, confirmDialog, empty, errorBox, fmtCount, fmtTime, functionHref, loading, stateKind, toast, DEFAULT_NAMESPACE } from '../dom.js';

/** How often the page is read again, in milliseconds. */
const REFRESH = 3000;

/** A link to the function of a job ("name.namespace"). */
function functionLink(label) {
  const at = label.lastIndexOf('.');
  const name = at > 0 ? label.slice(0, at) : label;
  const namespace = at > 0 ? label.slice(at + 1) : DEFAULT_NAMESPACE;
  return h('a', { href: functionHref(name, namespace) }, namespace === DEFAULT_NAMESPACE ? name : label);
}

/** A link to a call in the look-up box. */
function callLink(id, where) {
  return h('a', { href: `/ui/async?call=${encodeURIComponent(id)}`, class: 'mono', dataset: { focusKey: `${where}:${id}` } }, id);
}

function jobDetails(record) {
  const rows = [
    ['Call id', h('code', {}, record.id)],
    ['Function', functionLink(record.function)],
    ['State', chip(record.state, stateKind(record.state), { dataset: { state: record.state } })],
    ['Request', h('code', {}, `${record.method} ${record.path || '/'}`)],
    ['Outcome', describeJob(record) || '—'],
    ['Accepted', fmtTime(record.enqueuedAt)],
    ['Updated', fmtTime(record.updatedAt)],
    record.callbackUrl ? ['Callback', h('code', {}, record.callbackUrl)] : null,
  ].filter(Boolean);
  return h('dl', { class: 'spec', id: 'call-details' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** Renders the async page into root. */
export function render(root, { query }) {
  let timer = null;
  let disabled = false;
  const records = new Map();

  const depthBody = h('div', {}, loading('Reading the queue…'));
  const recentBody = h('div', {});
  const deadBody = h('div', {}, loading('Reading the dead letters…'));
  const errorSlot = h('div');
  const replayAll = h('button', { type: 'button', class: 'btn btn-small', id: 'replay-all', hidden: true }, 'Replay all');
  const lookupInput = h('input', { type: 'text', id: 'call-id', name: 'call', placeholder: 'Call id (X-Call-Id)', autocomplete: 'off', spellcheck: 'false', value: query.get('call') || '' });
  const lookupResult = h('div', { 'aria-live': 'polite' });
  const lookup = h(
    'form',
    { class: 'lookup', role: 'search', 'aria-label': 'Find a call by id' },
    h('div', { class: 'invoke-row lookup-row' }, h('label', { for: 'call-id', class: 'lookup-label' }, 'Call id'), h('div', { class: 'lookup-input' }, lookupInput, h('button', { type: 'submit', class: 'btn' }, 'Find'))),
    lookupResult,
  );

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Asynchronous calls'), h('div', { class: 'sub' }, 'Calls made with POST /async-function/NAME: queued, running, retried, and the ones that gave up.'))),
    errorSlot,
    h(
      'div',
      { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'depth-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'depth-title' }, 'Queues'), h('span', { class: 'hint' }, 'per function, refreshed every few seconds')), h('div', { class: 'card-body flush' }, depthBody)),
      h('section', { class: 'card', 'aria-labelledby': 'lookup-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'lookup-title' }, 'Find a call')), h('div', { class: 'card-body' }, lookup)),
    ),
    h('section', { class: 'card section', 'aria-labelledby': 'recent-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'recent-title' }, 'Calls from this browser'), h('span', { class: 'hint' }, 'made with the invoke form in this tab')), h('div', { class: 'card-body flush' }, recentBody)),
    h('section', { class: 'card section', 'aria-labelledby': 'dead-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'dead-title' }, 'Dead letters'), h('div', { class: 'page-actions' }, h('span', { class: 'hint' }, 'calls that used up their retries'), replayAll)), h('div', { class: 'card-body flush' }, deadBody)),
  );

  async function find(id) {
    if (!id) {
      replace(lookupResult);
      return;
    }
    replace(lookupResult, loading('Looking it up…'));
    try {
      const record = await getJob(id);
      replace(lookupResult, h('div', { class: 'result' }, record ? jobDetails(record) : h('div', { class: 'alert alert-error' }, `No asynchronous call with id ${id}. Finished calls are kept for 24 hours (7 days with NATS).`)));
    } catch (e) {
      replace(lookupResult, h('div', { class: 'result' }, errorBox(e)));
    }
  }

  lookup.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = lookupInput.value.trim();
    const url = new URL(location.href);
    if (id) url.searchParams.set('call', id);
    else url.searchParams.delete('call');
    history.replaceState(null, '', url.pathname + url.search);
    find(id);
  });

  function drawDepth(depths) {
    if (!depths.length) {
      replace(depthBody, empty({ title: 'No asynchronous calls yet', text: 'Queues appear here once a function is called with POST /async-function/NAME.', small: true }));
      return;
    }
    const cols = ['queued', 'running', 'retrying', 'dead'];
    keepFocus(depthBody, () => replace(
      depthBody,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'responsive', id: 'depth-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Function'), cols.map((c) => h('th', { scope: 'col', class: 'num' }, c[0].toUpperCase() + c.slice(1))))),
          h('tbody', {}, depths.map((d) => h('tr', { dataset: { function: d.function } },
            h('td', { class: 'primary', 'data-label': 'Function' }, functionLink(d.function)),
            cols.map((c) => h('td', { class: 'num', 'data-label': c[0].toUpperCase() + c.slice(1) }, c === 'dead' && d.dead ? h('span', { class: 'text-err' }, fmtCount(d.dead)) : fmtCount(d[c]))))))),
      ),
    ));
  }

  async function drawRecent() {
    const calls = recentCalls();
    if (!calls.length) {
      replace(recentBody, empty({ title: 'No calls from this browser yet', text: 'Use the invoke form of a function in async mode; its calls are followed here.', small: true }));
      return;
    }
    await Promise.all(
      calls.map(async (c) => {
        const known = records.get(c.id);
        if (known && FINAL.has(known.state)) return;
        try {
          const record = await getJob(c.id);
          if (record) records.set(c.id, record);
        } catch {
          // Shown as unknown; the page's error box says why the gateway did not answer.
        }
      }),
    );
    keepFocus(recentBody, () => replace(
      recentBody,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'responsive', id: 'recent-table' },
          h('thead', {}, h('tr', {}, ['Call id', 'Function', 'State', 'Outcome', 'Sent'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, calls.map((c) => {
            const r = records.get(c.id);
            const state = r ? r.state : 'unknown';
            return h('tr', { dataset: { call: c.id } },
              h('td', { class: 'primary', 'data-label': 'Call id' }, callLink(c.id, 'recent')),
              h('td', { 'data-label': 'Function' }, functionLink(c.function)),
              h('td', { 'data-label': 'State' }, chip(state, stateKind(state), { dataset: { state } })),
              h('td', { 'data-label': 'Outcome' }, r ? describeJob(r) : 'forgotten by the gateway'),
              h('td', { 'data-label': 'Sent' }, ago(c.at)));
          })))),
    ));
  }

  async function act(button, id, what, action) {
    button.disabled = true;
    try {
      await action(id);
      toast(`${what} ${id}`);
      await load();
    } catch (e) {
      button.disabled = false;
      toast(`${what} failed: ${e.message}`, 'error');
    }
  }

  replayAll.addEventListener('click', async () => {
    const ok = await confirmDialog({
      title: 'Replay every dead letter?',
      text: 'Every call in the dead letters now is queued again with its attempts reset, for all functions. Do it once the functions are fixed.',
      confirm: 'Replay all',
    });
    if (!ok) return;
    replayAll.disabled = true;
    try {
      const { replayed, failed } = await replayAllJobs((n) => { replayAll.textContent = `Replaying… ${fmtCount(n)}`; });
      toast(`Replayed ${fmtCount(replayed)} ${replayed === 1 ? 'call' : 'calls'}`);
      if (failed.size) {
        const [id, why] = failed.entries().next().value;
        toast(`${fmtCount(failed.size)} could not be replayed (${id}: ${why})`, 'error');
      }
    } catch (e) {
      toast(`Replay failed: ${e.message}`, 'error');
    } finally {
      replayAll.disabled = false;
      replayAll.textContent = 'Replay all';
      await load();
    }
  });

  function drawDead(list) {
    replayAll.hidden = !list.length;
    if (!list.length) {
      replace(deadBody, empty({ icon: '✓', title: 'No dead letters', text: 'Calls that fail every retry land here, to be replayed once the function is fixed.', small: true }));
      return;
    }
    keepFocus(deadBody, () => replace(
      deadBody,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'responsive', id: 'dead-table' },
          h('thead', {}, h('tr', {}, ['Call id', 'Function', 'Request', 'Attempts', 'Last error', 'Given up', ''].map((c) => h('th', { scope: 'col' }, c ? c : h('span', { class: 'visually-hidden' }, 'Actions'))))),
          h('tbody', {}, list.map((r) => {
            const replay = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Replay call ${r.id}`, dataset: { focusKey: `replay:${r.id}` } }, 'Replay');
            const discard = h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `Discard call ${r.id}`, dataset: { focusKey: `discard:${r.id}` } }, 'Discard');
            replay.addEventListener('click', () => act(replay, r.id, 'Replayed', replayJob));
            discard.addEventListener('click', async () => {
              const ok = await confirmDialog({ title: 'Discard this dead letter?', text: `Call ${r.id} to ${r.function} is forgotten for good; it cannot be replayed afterwards.`, confirm: 'Discard' });
              if (ok) act(discard, r.id, 'Discarded', discardJob);
            });
            return h('tr', { dataset: { call: r.id } },
              h('td', { class: 'primary', 'data-label': 'Call id' }, callLink(r.id, 'dead')),
              h('td', { 'data-label': 'Function' }, functionLink(r.function)),
              h('td', { 'data-label': 'Request' }, h('code', {}, `${r.method} ${r.path || '/'}`)),
              h('td', { class: 'num', 'data-label': 'Attempts' }, `${r.attempts || 0}/${r.maxAttempts}`),
              h('td', { 'data-label': 'Last error' }, r.lastError || '—'),
              h('td', { 'data-label': 'Given up' }, ago(r.at || r.updatedAt)),
              h('td', { 'data-label': 'Actions' }, h('div', { class: 'page-actions' }, replay, discard)));
          })))),
    ));
  }

  async function load() {
    if (disabled) return;
    try {
      const [depths, dead] = await Promise.all([queueDepth(), deadLetters()]);
      replace(errorSlot);
      depths.sort((a, b) => a.function.localeCompare(b.function));
      drawDepth(depths);
      drawDead(dead);
      await drawRecent();
    } catch (e) {
      if (e.status === 501) {
        disabled = true;
        clearInterval(timer);
        const off = empty({ icon: '!', title: 'Asynchronous calls are off', text: e.message, small: true });
        replace(depthBody, off);
        replace(deadBody, empty({ title: 'No dead letters', text: 'This gateway has no queue.', small: true }));
        replace(recentBody);
        return;
      }
      replace(errorSlot, errorBox(e, 'Retrying every few seconds.'));
    }
  }

  load();
  if (lookupInput.value) find(lookupInput.value.trim());
  timer = setInterval(load, REFRESH);
  return {
    title: 'Async',
    cleanup() {
      clearInterval(timer);
    },
  };
}
