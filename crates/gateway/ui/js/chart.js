// A small time-series line chart drawn as inline SVG (no library). It redraws itself to the
// width of its box, so text keeps its size on a phone and on a wide screen.

import { h, svg, replace } from './dom.js';

const HEIGHT = 160;
const PAD = { left: 52, right: 10, top: 10, bottom: 22 };

/** A "nice" step (1, 2 or 5 times a power of ten) for about `target` divisions of `max`. */
function niceStep(max, target = 4) {
  const raw = max / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  const nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10;
  return nice * power;
}

/** A line chart of several series over a fixed time span ending now. */
export class LineChart {
  /**
   * title: shown above; series: [{key, name}] read from each point; format: value -> text,
   * axis: the same for the y axis' labels; floor: the smallest top of the y axis (so an idle
   * function does not draw noise large).
   */
  constructor({ title, series, format, axis, floor, emptyText }) {
    this.title = title;
    this.series = series;
    this.format = format;
    this.axis = axis || format;
    this.floor = floor;
    this.spanMs = 60000;
    this.emptyText = emptyText;
    this.points = [];
    this.box = h('div', { class: 'chart' });
    this.current = h('div', { class: 'legend' });
    this.el = h(
      'figure',
      { class: 'chart-figure' },
      h('div', { class: 'chart-head' }, h('h3', {}, title), this.current),
      this.box,
    );
    this.observer = new ResizeObserver(() => this.draw());
    this.observer.observe(this.box);
  }

  /** Sets the points ({t, [key]: value|null}) and the span shown (ms up to now), and redraws. */
  update(points, spanMs) {
    this.points = points;
    this.spanMs = spanMs;
    this.draw();
  }

  /** Stops following the box's size. */
  destroy() {
    this.observer.disconnect();
  }

  legend() {
    const last = this.points[this.points.length - 1];
    replace(
      this.current,
      this.series.map((s, i) =>
        h('span', {}, h('i', { class: `s${i}`, 'aria-hidden': 'true' }), `${s.name} `, h('strong', {}, last && last[s.key] !== null && last[s.key] !== undefined ? this.format(last[s.key]) : '—')),
      ),
    );
  }

  draw() {
    this.legend();
    const width = Math.max(200, Math.floor(this.box.clientWidth || 400));
    const now = Date.now();
    const from = now - this.spanMs;
    const x = (t) => PAD.left + ((t - from) / this.spanMs) * (width - PAD.left - PAD.right);
    const values = this.points.flatMap((p) => this.series.map((s) => p[s.key])).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
    const max = Math.max(this.floor, ...values);
    const step = niceStep(max);
    const top = Math.ceil(max / step) * step || step;
    const y = (v) => PAD.top + (1 - v / top) * (HEIGHT - PAD.top - PAD.bottom);
    const parts = [];
    for (let v = 0; v <= top + step / 2; v += step) {
      parts.push(svg('line', { class: 'grid', x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
      parts.push(svg('text', { class: 'axis-label', x: PAD.left - 6, y: y(v) + 3.5, 'text-anchor': 'end' }, this.axis(v)));
    }
    const ago = (ms) => (ms >= 120000 ? `−${+(ms / 60000).toFixed(1)} min` : `−${Math.round(ms / 1000)} s`);
    for (const [ms, anchor] of [[this.spanMs, 'start'], [this.spanMs / 2, 'middle'], [0, 'end']]) {
      parts.push(svg('text', { class: 'axis-label', x: x(now - ms), y: HEIGHT - 5, 'text-anchor': anchor }, ms === 0 ? 'now' : ago(ms)));
    }
    const visible = this.points.filter((p) => p.t >= from);
    this.series.forEach((s, i) => {
      let d = '';
      let run = [];
      const flush = () => {
        if (run.length === 1) parts.push(svg('circle', { class: `dot s${i}`, cx: run[0][0], cy: run[0][1], r: 2.5 }));
        run = [];
      };
      for (const p of visible) {
        const v = p[s.key];
        if (v === null || v === undefined || !Number.isFinite(v)) {
          flush();
          continue;
        }
        const px = x(p.t).toFixed(1);
        const py = y(Math.min(v, top)).toFixed(1);
        d += `${run.length ? 'L' : 'M'}${px} ${py} `;
        run.push([px, py]);
      }
      flush();
      if (d) parts.push(svg('path', { class: `line s${i}`, d: d.trim() }));
    });
    if (!values.length) {
      parts.push(svg('text', { class: 'chart-empty', x: (PAD.left + width - PAD.right) / 2, y: HEIGHT / 2, 'text-anchor': 'middle' }, this.emptyText));
    }
    const last = this.points[this.points.length - 1];
    const said = this.series.map((s) => `${s.name} ${last && last[s.key] !== null && last[s.key] !== undefined ? this.format(last[s.key]) : 'no data'}`).join(', ');
    replace(this.box, svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': `${this.title}, ${ago(this.spanMs).slice(1)} up to now: ${said}` }, parts));
  }
}
