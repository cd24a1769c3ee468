/* Small SVG plots for the dashboard: a line chart with interval bands, a stacked bar. */
"use strict";

const Plot = {
  /* series: [{name, color, points: [{x, y, lo, hi}]}]; y in [0, 1]. */
  lines(series, opts) {
    const W = 520, H = 260, L = 44, R = 12, T = 12, B = 34;
    const xs = series.flatMap(s => s.points.map(p => p.x));
    const x0 = Math.min(...xs, 0), x1 = Math.max(...xs, 1);
    const sx = x => L + (x - x0) / ((x1 - x0) || 1) * (W - L - R);
    const sy = y => T + (1 - y) * (H - T - B);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
                            "aria-label": opts.title, class: "plot" });
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#e6e9ef" }));
      svg.appendChild(el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, t.toFixed(2)));
    }
    const ticks = [...new Set(xs)].sort((a, b) => a - b);
    const step = Math.max(1, Math.ceil(ticks.length / 8));
    ticks.forEach((x, i) => {
      if (i % step === 0) svg.appendChild(el("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle" }, String(x)));
    });
    svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, opts.xLabel));
    series.forEach((s, k) => {
      const pts = s.points.filter(p => p.y !== null && p.y !== undefined);
      const band = pts.filter(p => p.lo !== null && p.lo !== undefined);
      if (band.length > 1) {
        const upper = band.map(p => `${sx(p.x)},${sy(p.hi)}`);
        const lower = band.slice().reverse().map(p => `${sx(p.x)},${sy(p.lo)}`);
        svg.appendChild(el("polygon", { points: upper.concat(lower).join(" "), fill: s.color, "fill-opacity": 0.15 }));
      }
      if (pts.length > 1) {
        svg.appendChild(el("polyline", { points: pts.map(p => `${sx(p.x)},${sy(p.y)}`).join(" "),
                                         fill: "none", stroke: s.color, "stroke-width": 2,
                                         "stroke-dasharray": s.dash || null }));
      }
      for (const p of pts) {
        if (p.lo !== null && p.lo !== undefined) {
          svg.appendChild(el("line", { x1: sx(p.x), x2: sx(p.x), y1: sy(p.lo), y2: sy(p.hi), stroke: s.color, "stroke-opacity": 0.5 }));
        }
        svg.appendChild(el("circle", { cx: sx(p.x), cy: sy(p.y), r: 3.5, fill: s.color, class: "point" }));
      }
      svg.appendChild(el("rect", { x: L + 8 + k * 150, y: T + 2, width: 10, height: 10, fill: s.color }));
      svg.appendChild(el("text", { x: L + 22 + k * 150, y: T + 11 }, s.name));
    });
    return svg;
  },

  /* parts: [{name, value, color}] as one horizontal bar with a legend. */
  stacked(parts, opts) {
    const W = 520, H = 56, total = parts.reduce((a, p) => a + p.value, 0) || 1;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": opts.title, class: "plot" });
    let x = 0;
    parts.forEach((p, k) => {
      const w = p.value / total * W;
      svg.appendChild(el("rect", { x, y: 0, width: w, height: 22, fill: p.color }));
      x += w;
      svg.appendChild(el("rect", { x: k * 130, y: 34, width: 10, height: 10, fill: p.color }));
      svg.appendChild(el("text", { x: k * 130 + 14, y: 43 }, `${p.name} ${p.value}`));
    });
    return svg;
  },
};
