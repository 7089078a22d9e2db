// Live figures from the gateway's /metrics, computed in the browser. The sampler scrapes the
// Prometheus text every few seconds and keeps the last minutes of samples; rates come from the
// difference of two samples' counters, latency quantiles from the difference of their
// histogram buckets (as Prometheus' rate() and histogram_quantile() would compute them).

import { metricsText } from './api.js';

/** How often the sampler scrapes /metrics, in milliseconds. */
export const SAMPLE_EVERY = 5000;
/** How long samples are kept, in milliseconds (the charts' span). */
export const KEEP = 10 * 60 * 1000;
/** The gap between the first two samples, in milliseconds. */
const FIRST_GAP = 1500;
/** The window the tables' figures cover, in milliseconds. */
export const WINDOW = 5 * 60 * 1000;

const LINE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(v) {
  return v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
}

function parseValue(v) {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

function emptyCounters() {
  return { codes: new Map(), buckets: new Map(), count: 0, sum: 0, started: 0 };
}

/**
 * Parses the gateway's Prometheus text into per-function counters, keyed by the
 * `function_name` label (`name.namespace`): calls per status code, histogram buckets (all
 * codes together, by upper bound), count, sum and calls started.
 */
export function parseMetrics(text) {
  const functions = new Map();
  const of = (label) => {
    let f = functions.get(label);
    if (!f) {
      f = emptyCounters();
      functions.set(label, f);
    }
    return f;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const [, name, labelText = '', valueText] = m;
    if (!name.startsWith('gateway_function')) continue;
    const labels = {};
    for (const l of labelText.matchAll(LABEL)) labels[l[1]] = unescapeLabel(l[2]);
    const fn = labels.function_name;
    if (!fn) continue;
    const value = parseValue(valueText);
    if (!Number.isFinite(value)) continue;
    const f = of(fn);
    switch (name) {
      case 'gateway_function_invocation_total':
        f.codes.set(labels.code, (f.codes.get(labels.code) || 0) + value);
        break;
      case 'gateway_functions_seconds_bucket': {
        const le = parseValue(labels.le);
        f.buckets.set(le, (f.buckets.get(le) || 0) + value);
        break;
      }
      case 'gateway_functions_seconds_count':
        f.count += value;
        break;
      case 'gateway_functions_seconds_sum':
        f.sum += value;
        break;
      case 'gateway_function_invocation_started':
        f.started += value;
        break;
      default:
    }
  }
  return functions;
}

/** The increase of a counter between two samples; a smaller value means it was reset. */
function increase(before, after) {
  return after >= before ? after - before : after;
}

/** The interpolated quantile q (0..1) of cumulative buckets [[le, count], ...] sorted by le. */
export function quantile(q, buckets) {
  if (!buckets.length) return null;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerLe;
      if (count === lowerCount) return le;
      return lowerLe + ((le - lowerLe) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerLe = le;
    lowerCount = count;
  }
  return lowerLe;
}

/**
 * What happened to one function between two samples: calls, errors (non-2xx), requests/s,
 * error rate, p50 and p99 latency (seconds; null without calls).
 */
export function between(a, b, seconds) {
  const before = a || emptyCounters();
  const after = b || emptyCounters();
  let calls = 0;
  let errors = 0;
  for (const [code, n] of after.codes) {
    const d = increase(before.codes.get(code) || 0, n);
    calls += d;
    if (!/^2\d\d$/.test(code)) errors += d;
  }
  const bounds = [...after.buckets.keys()].sort((x, y) => x - y);
  const buckets = bounds.map((le) => [le, increase(before.buckets.get(le) || 0, after.buckets.get(le))]);
  return {
    calls,
    errors,
    rps: seconds > 0 ? calls / seconds : null,
    errorRate: calls > 0 ? errors / calls : null,
    p50: quantile(0.5, buckets),
    p99: quantile(0.99, buckets),
  };
}

/** Scrapes /metrics on a timer and answers questions about the last minutes. */
class Sampler {
  constructor() {
    this.samples = [];
    this.listeners = new Set();
    this.error = null;
    this.timer = null;
  }

  /** Starts scraping (once; later calls do nothing). */
  start() {
    if (this.timer) return;
    const tick = async () => {
      try {
        const text = await metricsText();
        const now = Date.now();
        this.samples.push({ t: now, functions: parseMetrics(text) });
        while (this.samples.length > 2 && now - this.samples[0].t > KEEP + SAMPLE_EVERY) this.samples.shift();
        this.error = null;
      } catch (e) {
        this.error = e;
      }
      for (const listener of this.listeners) listener(this);
    };
    // A second sample soon after the first, so figures show within seconds of opening.
    tick();
    this.timer = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, SAMPLE_EVERY);
    }, FIRST_GAP);
  }

  /** Calls listener after every scrape; returns the function that stops it. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Figures of function `label` over the last `windowMs` (as much of it as was sampled). */
  recent(label, windowMs = WINDOW) {
    const n = this.samples.length;
    if (n < 2) return null;
    const last = this.samples[n - 1];
    let first = this.samples[0];
    for (const s of this.samples) {
      if (last.t - s.t <= windowMs) {
        first = s;
        break;
      }
    }
    if (first === last) first = this.samples[n - 2];
    const seconds = (last.t - first.t) / 1000;
    return { ...between(first.functions.get(label), last.functions.get(label), seconds), seconds };
  }

  /** One point per sampling interval for function `label`: {t, rps, errRps, p50, p99}. */
  series(label) {
    const points = [];
    for (let i = 1; i < this.samples.length; i += 1) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      const seconds = (b.t - a.t) / 1000;
      const d = between(a.functions.get(label), b.functions.get(label), seconds);
      points.push({ t: b.t, rps: d.rps, errRps: seconds > 0 ? d.errors / seconds : null, p50: d.p50, p99: d.p99 });
    }
    return points;
  }

  /** When the first kept sample was taken, or null. */
  since() {
    return this.samples.length ? this.samples[0].t : null;
  }
}

/** The portal's one sampler, shared by every page so history survives navigation. */
export const sampler = new Sampler();
