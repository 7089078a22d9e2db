// Asynchronous calls made from this browser tab: remembered in sessionStorage so the async
// view can show how they ended, and followed by polling their job record.

import { getJob } from './api.js';

const KEY = 'ironfaas.recentCalls';
const MAX = 50;

/** States after which a call changes no more (until a dead letter is replayed). */
export const FINAL = new Set(['succeeded', 'failed', 'deadLettered']);

/** The calls this tab made, newest first: [{id, function, at}]. */
export function recentCalls() {
  try {
    const list = JSON.parse(sessionStorage.getItem(KEY) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Remembers a call made from this tab. */
export function rememberCall(id, fn) {
  const list = recentCalls().filter((c) => c.id !== id);
  list.unshift({ id, function: fn, at: Date.now() });
  try {
    sessionStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX)));
  } catch {
    // Storage full or disabled: the call is still shown where it was made.
  }
}

/**
 * Polls a call's record until it reaches a final state or stop() is called; onRecord gets
 * every record read (null while the gateway does not know the id yet) and onError failures.
 */
export function followCall(id, { onRecord, onError }) {
  let stopped = false;
  let timer = null;
  const started = Date.now();
  const poll = async () => {
    if (stopped) return;
    try {
      const record = await getJob(id);
      if (stopped) return;
      onRecord(record);
      if (record && FINAL.has(record.state)) return;
    } catch (e) {
      if (stopped) return;
      onError(e);
    }
    const wait = Date.now() - started < 10000 ? 400 : 2000;
    timer = setTimeout(poll, wait);
  };
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** One line about where a job is: "succeeded · 200 · 1 attempt". */
export function describeJob(record) {
  if (!record) return 'not known yet';
  const parts = [];
  if (record.status) parts.push(`HTTP ${record.status}`);
  const attempts = record.attempts || record.attempt;
  if (attempts) parts.push(`${attempts} attempt${attempts === 1 ? '' : 's'} of ${record.maxAttempts}`);
  if (record.lastError || record.error) parts.push(record.lastError || record.error);
  return parts.join(' · ');
}
