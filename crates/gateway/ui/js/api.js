// The gateway's public API, same origin. Every failure becomes an ApiError whose message says
// what failed and, for the usual causes (no credentials, a feature turned off), what to do.

import { DEFAULT_NAMESPACE } from './dom.js';

/** A failed API call: the HTTP status (0 when the gateway was not reached) and a message. */
export class ApiError extends Error {
  constructor(status, message, title) {
    super(message);
    this.status = status;
    this.title = title || (status ? `HTTP ${status}` : 'Gateway unreachable');
  }
}

async function describe(response, what) {
  const text = (await response.text().catch(() => '')).trim();
  switch (response.status) {
    case 401:
      return new ApiError(401, 'the gateway asks for credentials. Reload the page and sign in when the browser asks, or open the portal as http://USER:PASSWORD@HOST/ui/.', 'Not signed in');
    case 403:
      return new ApiError(403, text || `the gateway does not allow ${what}.`, 'Forbidden');
    case 501:
      return new ApiError(501, text || `${what} is not enabled on this gateway.`, 'Not enabled');
    default:
      return new ApiError(response.status, text || `${what} answered ${response.status} ${response.statusText}`.trim(), `HTTP ${response.status}`);
  }
}

/**
 * The absolute URL of a gateway path. Built on location.origin, never on the page's own URL:
 * a portal opened as http://USER:PASSWORD@HOST/ui/ keeps the credentials in its base URL, and
 * fetch() refuses any URL that carries them (the browser sends them on its own).
 */
export function gatewayUrl(path) {
  return new URL(path, location.origin).href;
}

/** fetch() that throws ApiError for network failures and non-2xx answers. */
export async function request(method, url, { json, body, headers, signal, what } = {}) {
  const init = { method, headers: new Headers(headers || {}), signal, credentials: 'same-origin', cache: 'no-store' };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers.set('Content-Type', 'application/json');
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(gatewayUrl(url), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the gateway could not be reached (${e.message}). Is it running?`);
  }
  if (!response.ok) throw await describe(response, what || `${method} ${url.split('?')[0]}`);
  return response;
}

async function getJSON(url, what) {
  const response = await request('GET', url, { what });
  return response.json();
}

function nsQuery(namespace) {
  return namespace && namespace !== DEFAULT_NAMESPACE ? `?namespace=${encodeURIComponent(namespace)}` : '';
}

/** Every deployed function (FunctionStatus). */
export function listFunctions() {
  return getJSON('/system/functions', 'listing functions');
}

/** One function's status, or null when there is none by that name. */
export async function getFunction(name, namespace) {
  try {
    return await getJSON(`/system/function/${encodeURIComponent(name)}${nsQuery(namespace)}`, `reading function ${name}`);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

/** Deploys a new function (POST); resolves once its replicas are ready. */
export function deployFunction(deployment) {
  return request('POST', '/system/functions', { json: deployment, what: `deploying ${deployment.service}` });
}

/** Replaces a function (PUT). */
export function updateFunction(deployment) {
  return request('PUT', '/system/functions', { json: deployment, what: `updating ${deployment.service}` });
}

/** Removes a function. */
export function removeFunction(name, namespace) {
  const json = { functionName: name };
  if (namespace && namespace !== DEFAULT_NAMESPACE) json.namespace = namespace;
  return request('DELETE', '/system/functions', { json, what: `removing ${name}` });
}

/** Sets a function's replicas. */
export function scaleFunction(name, namespace, replicas) {
  const json = { serviceName: name, replicas };
  if (namespace && namespace !== DEFAULT_NAMESPACE) json.namespace = namespace;
  return request('POST', `/system/scale-function/${encodeURIComponent(name)}`, { json, what: `scaling ${name}` });
}

/** The images in the function store. */
export function listStore() {
  return getJSON('/system/store', 'the function store');
}

/** The gateway's version and provider. */
export function info() {
  return getJSON('/system/info', 'gateway info');
}

/** Queue depth per function. */
export function queueDepth() {
  return getJSON('/system/async', 'asynchronous calls');
}

/** The dead-lettered calls. */
export function deadLetters() {
  return getJSON('/system/async/dead-letters', 'asynchronous calls');
}

/** One asynchronous call's record, or null when unknown (or forgotten). */
export async function getJob(id) {
  try {
    return await getJSON(`/system/async/${encodeURIComponent(id)}`, `reading call ${id}`);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

/** Replays a dead-lettered call. */
export function replayJob(id) {
  return request('POST', `/system/async/dead-letters/${encodeURIComponent(id)}/replay`, { what: `replaying ${id}` });
}

/**
 * Replays every dead letter there is now, a page at a time (calls that die again meanwhile are
 * not replayed twice); onProgress gets the count so far. Resolves to { replayed, failed } with
 * failed a Map of call id to why.
 */
export async function replayAllJobs(onProgress) {
  let until = null;
  let replayed = 0;
  const failed = new Map();
  for (;;) {
    const query = new URLSearchParams({ limit: '200' });
    if (until !== null) query.set('until', String(until));
    const response = await request('POST', `/system/async/dead-letters/replay?${query}`, { what: 'replaying the dead letters' });
    const page = await response.json();
    until = page.until;
    replayed += page.replayed.length;
    for (const f of page.failed) failed.set(f.id, f.error);
    if (onProgress) onProgress(replayed);
    if (!page.more || !page.replayed.length) return { replayed, failed };
  }
}

/** Forgets a dead-lettered call. */
export function discardJob(id) {
  return request('DELETE', `/system/async/dead-letters/${encodeURIComponent(id)}`, { what: `discarding ${id}` });
}

/** The Prometheus text of /metrics. */
export async function metricsText(signal) {
  const response = await request('GET', '/metrics', { signal, what: 'metrics' });
  return response.text();
}

/**
 * Reads a function's logs (NDJSON), calling onOpen once the gateway answers and onEntry for
 * each line as it arrives. With follow the promise settles only when the stream ends or signal
 * aborts it.
 */
export async function streamLogs({ name, namespace, tail = 200, follow = false, since, signal, onOpen, onEntry }) {
  const q = new URLSearchParams({ name, tail: String(tail), follow: String(follow) });
  if (namespace && namespace !== DEFAULT_NAMESPACE) q.set('namespace', namespace);
  if (since) q.set('since', since);
  const response = await request('GET', `/system/logs?${q}`, { signal, what: `the logs of ${name}` });
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line) continue;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      onEntry(entry);
    }
  }
}

/** The invocation URL of a function, with an optional sub-path and query ("/x?y=1"). */
export function functionUrl(prefix, name, namespace, path) {
  const target = namespace && namespace !== DEFAULT_NAMESPACE ? `${name}.${namespace}` : name;
  let rest = (path || '').trim();
  if (rest && !rest.startsWith('/') && !rest.startsWith('?')) rest = `/${rest}`;
  return `/${prefix}/${encodeURIComponent(target)}${rest}`;
}

/**
 * Calls a function: sync (`/function/...`) answers with the function's response; async
 * (`/async-function/...`) with 202 and the call id. Network failures throw; any HTTP status
 * is a result.
 */
export async function invoke({ name, namespace, method, path, headers, body, async: isAsync }) {
  const url = functionUrl(isAsync ? 'async-function' : 'function', name, namespace, path);
  const init = { method, headers: new Headers(headers), credentials: 'same-origin', cache: 'no-store', redirect: 'manual' };
  if (body && method !== 'GET' && method !== 'HEAD') init.body = body;
  const started = performance.now();
  let response;
  try {
    response = await fetch(gatewayUrl(url), init);
  } catch (e) {
    throw new ApiError(0, `the call did not complete (${e.message}).`);
  }
  const text = method === 'HEAD' ? '' : await response.text();
  const took = performance.now() - started;
  return {
    url,
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers.entries()],
    body: text,
    took,
    callId: response.headers.get('x-call-id'),
  };
}
