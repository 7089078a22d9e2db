"""Hand-written SVG charts: a figure of panels, each with a linear, logarithmic or percentile
("nines") x axis and a linear or logarithmic y axis, lines, markers, error bars, bars and
reference lines. No plotting library: the output is plain SVG 1.1 that any browser shows."""

import math
from xml.sax.saxutils import escape

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"


def fmt(v):
    """A short tick label: 1.5k, 20, 0.5, 2M."""
    a = abs(v)
    if a >= 1e6:
        s, unit = v / 1e6, "M"
    elif a >= 1e4:
        s, unit = v / 1e3, "k"
    else:
        s, unit = v, ""
    if s == int(s):
        return f"{int(s)}{unit}"
    return f"{s:.1f}{unit}" if abs(s) >= 1 else f"{s:.2g}{unit}"


def nines(p):
    """A percentile's position on a "nines" axis: 90 -> 1, 99 -> 2, 99.9 -> 3."""
    return -math.log10(max(1e-6, 1 - p / 100))


class LinearAxis:
    def __init__(self, lo, hi, ticks=6, integer=False):
        if hi <= lo:
            hi = lo + 1
        step = 10 ** math.floor(math.log10((hi - lo) / ticks))
        for m in (1, 2, 2.5, 5, 10):
            if (hi - lo) / (step * m) <= ticks:
                step *= m
                break
        if integer:
            step = max(1, round(step))
        self.lo = math.floor(lo / step) * step
        self.hi = math.ceil(hi / step) * step
        self.step = step

    def pos(self, v):
        return (v - self.lo) / (self.hi - self.lo)

    def ticks(self):
        n = round((self.hi - self.lo) / self.step)
        return [(self.lo + i * self.step, fmt(self.lo + i * self.step)) for i in range(n + 1)]


class LogAxis:
    def __init__(self, lo, hi, explicit=None):
        lo, hi = max(lo, 1e-9), max(hi, 1e-9)
        self.explicit = explicit
        if explicit:
            self.lo, self.hi = min(explicit), max(explicit)
        else:
            self.lo = 10 ** math.floor(math.log10(lo))
            self.hi = 10 ** math.ceil(math.log10(hi))
            if self.hi == self.lo:
                self.hi *= 10

    def pos(self, v):
        return (math.log10(max(v, 1e-9)) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))

    def ticks(self):
        if self.explicit:
            return [(v, fmt(v)) for v in self.explicit]
        decades = math.log10(self.hi / self.lo)
        mults = (1, 2, 5) if decades <= 4 else (1,)
        out, e = [], math.floor(math.log10(self.lo))
        while 10 ** e <= self.hi:
            for m in mults:
                v = m * 10 ** e
                if self.lo <= v <= self.hi:
                    out.append((v, fmt(v)))
            e += 1
        return out


class NinesAxis:
    """Percentiles from 0 to `hi` (a nines() value), ticks at 0, 50, 90, 99, 99.9, 99.99."""

    def __init__(self, hi):
        self.hi = max(1.0, math.ceil(hi * 2) / 2)

    def pos(self, v):
        return v / self.hi

    def ticks(self):
        return [(nines(p), label) for p, label in
                ((0, "0"), (50, "50"), (90, "90"), (99, "99"), (99.9, "99.9"), (99.99, "99.99"), (99.999, "99.999"))
                if nines(p) <= self.hi + 1e-9]


class Panel:
    def __init__(self, fig, x, y, w, h, xaxis, yaxis):
        self.fig, self.x, self.y, self.w, self.h = fig, x, y, w, h
        self.xaxis, self.yaxis = xaxis, yaxis

    def px(self, v):
        return self.x + self.xaxis.pos(v) * self.w

    def py(self, v):
        return self.y + self.h - self.yaxis.pos(v) * self.h

    def line(self, points, color, markers=False, dash=None, width=1.8):
        if not points:
            return
        d = " ".join(f"{'M' if i == 0 else 'L'}{self.px(x):.1f},{self.py(y):.1f}" for i, (x, y) in enumerate(points))
        style = f" stroke-dasharray='{dash}'" if dash else ""
        self.fig.add(f"<path d='{d}' fill='none' stroke='{color}' stroke-width='{width}'{style}/>")
        if markers:
            for x, y in points:
                self.fig.add(f"<circle cx='{self.px(x):.1f}' cy='{self.py(y):.1f}' r='2.8' fill='{color}'/>")

    def error_bar(self, x, lo, hi, color):
        px, top, bottom = self.px(x), self.py(hi), self.py(lo)
        self.fig.add(f"<path d='M{px:.1f},{top:.1f} L{px:.1f},{bottom:.1f} M{px - 4:.1f},{top:.1f} "
                     f"L{px + 4:.1f},{top:.1f} M{px - 4:.1f},{bottom:.1f} L{px + 4:.1f},{bottom:.1f}' "
                     f"stroke='{color}' stroke-width='1'/>")

    def bar(self, x0, x1, height, color, opacity=0.75):
        left, right = self.px(x0), self.px(x1)
        top, bottom = self.py(height), self.py(self.yaxis.lo)
        self.fig.add(f"<rect x='{left:.1f}' y='{top:.1f}' width='{max(0.5, right - left - 1):.1f}' "
                     f"height='{bottom - top:.1f}' fill='{color}' fill-opacity='{opacity}'/>")

    def hline(self, y, color, label="", dash="5,4"):
        py = self.py(y)
        self.fig.add(f"<line x1='{self.x}' y1='{py:.1f}' x2='{self.x + self.w}' y2='{py:.1f}' "
                     f"stroke='{color}' stroke-width='1.2' stroke-dasharray='{dash}'/>")
        if label:
            self.fig.text(self.x + self.w - 4, py - 4, label, size=10, anchor="end", color=color, halo=True)

    def vline(self, x, color, label="", dash="5,4", label_below=False):
        px = self.px(x)
        self.fig.add(f"<line x1='{px:.1f}' y1='{self.y}' x2='{px:.1f}' y2='{self.y + self.h}' "
                     f"stroke='{color}' stroke-width='1.2' stroke-dasharray='{dash}'/>")
        if label:
            self.fig.text(px + 3, self.y + (self.h - 4 if label_below else 11), label, size=10, color=color, halo=True)

    def label(self, x, y, text, color="#333", size=10, anchor="start"):
        self.fig.text(self.px(x), self.py(y), text, size=size, anchor=anchor, color=color)


class Figure:
    def __init__(self, width, height, title):
        self.width, self.height = width, height
        self.parts = [
            f"<rect width='{width}' height='{height}' fill='white'/>",
        ]
        self.text(width / 2, 22, title, size=14, anchor="middle", weight="bold")

    def add(self, element):
        self.parts.append(element)

    def text(self, x, y, text, size=11, anchor="start", color="#222", weight="normal", rotate=None, halo=False):
        transform = f" transform='rotate({rotate} {x:.1f} {y:.1f})'" if rotate is not None else ""
        outline = " stroke='white' stroke-width='3' paint-order='stroke'" if halo else ""
        self.add(f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' fill='{color}' "
                 f"font-weight='{weight}' {FONT}{transform}{outline}>{escape(str(text))}</text>")

    def panel(self, x, y, w, h, title, xaxis, yaxis, x_label="", y_label="", x_ticks=True):
        p = Panel(self, x, y, w, h, xaxis, yaxis)
        self.add(f"<rect x='{x}' y='{y}' width='{w}' height='{h}' fill='#fafafa' stroke='#999' stroke-width='0.8'/>")
        for v, label in yaxis.ticks():
            py = p.py(v)
            if y - 0.5 <= py <= y + h + 0.5:
                self.add(f"<line x1='{x}' y1='{py:.1f}' x2='{x + w}' y2='{py:.1f}' stroke='#e3e3e3' stroke-width='0.8'/>")
                self.text(x - 5, py + 3.5, label, size=10, anchor="end", color="#444")
        if x_ticks:
            for v, label in xaxis.ticks():
                px = p.px(v)
                if x - 0.5 <= px <= x + w + 0.5:
                    self.add(f"<line x1='{px:.1f}' y1='{y}' x2='{px:.1f}' y2='{y + h}' stroke='#e3e3e3' stroke-width='0.8'/>")
                    self.text(px, y + h + 14, label, size=10, anchor="middle", color="#444")
        if title:
            self.text(x + w / 2, y - 7, title, size=12, anchor="middle", weight="bold")
        if x_label:
            self.text(x + w / 2, y + h + 31, x_label, size=11, anchor="middle")
        if y_label:
            self.text(x - 45, y + h / 2, y_label, size=11, anchor="middle", rotate=-90)
        return p

    def legend(self, items, x, y, dashed=()):
        for name, color in items:
            dash = " stroke-dasharray='5,4'" if name in dashed else ""
            self.add(f"<line x1='{x}' y1='{y - 4}' x2='{x + 22}' y2='{y - 4}' stroke='{color}' stroke-width='2.5'{dash}/>")
            self.text(x + 27, y, name, size=11)
            x += 40 + 7 * len(name)

    def save(self, path):
        with open(path, "w") as f:
            f.write(f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' height='{self.height}' "
                    f"viewBox='0 0 {self.width} {self.height}'>\n")
            f.write("\n".join(self.parts))
            f.write("\n</svg>\n")
