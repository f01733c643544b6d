// Télésanté — remote-monitoring charts (uPlot, vendored): one chart per measure, thresholds dashed, alerts marked.
"use strict";

(() => {
  const colours = { red: "#b00020", orange: "#c25100", blue: "#1f5fa8" };

  function draw(container, chart) {
    const figure = document.createElement("figure");
    figure.className = "monitoring-chart";
    figure.dataset.measure = chart.measure;
    figure.dataset.points = String(chart.values.length);
    const caption = document.createElement("figcaption");
    caption.textContent = `${chart.label} (${chart.unit}) — ${chart.values.length} mesure${chart.values.length > 1 ? "s" : ""}`;
    figure.append(caption);
    container.append(figure);
    if (!chart.values.length) return;
    const extremes = chart.values.concat(chart.limits.map((l) => l.value));
    const low = Math.min(...extremes);
    const high = Math.max(...extremes);
    const margin = Math.max((high - low) * 0.15, 1);
    const overlay = (u) => {
      const ctx = u.ctx;
      ctx.save();
      ctx.lineWidth = 1.5 * devicePixelRatio;
      for (const limit of chart.limits) {
        const y = u.valToPos(limit.value, "y", true);
        ctx.strokeStyle = colours[limit.severity] || "#555";
        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(u.bbox.left, y);
        ctx.lineTo(u.bbox.left + u.bbox.width, y);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      for (const alert of chart.alerts) {
        const x = u.valToPos(alert.at, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.fillStyle = colours[alert.severity] || "#555";
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x - 6 * devicePixelRatio, u.bbox.top - 10 * devicePixelRatio);
        ctx.lineTo(x + 6 * devicePixelRatio, u.bbox.top - 10 * devicePixelRatio);
        ctx.fill();
      }
      ctx.restore();
    };
    const width = Math.min(container.clientWidth || 720, 900);
    // the time axis covers the readings and the alerts (an alert raised after the last reading stays visible)
    const instants = chart.times.concat(chart.alerts.map((a) => a.at));
    const first = Math.min(...instants);
    const last = Math.max(...instants);
    const pad = Math.max((last - first) * 0.03, 3600);
    const day = (ts) =>
      new Date(ts * 1e3).toLocaleDateString("fr-FR", { day: "2-digit", month: "2-digit", timeZone: "Europe/Paris" });
    const moment = (ts) =>
      new Date(ts * 1e3).toLocaleString("fr-FR", {
        day: "2-digit",
        month: "2-digit",
        year: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        timeZone: "Europe/Paris",
      });
    // eslint-disable-next-line no-undef
    new uPlot(
      {
        width,
        height: 220,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Europe/Paris"),
        scales: { x: { time: true, range: [first - pad, last + pad] }, y: { range: [low - margin, high + margin] } },
        series: [
          { label: "Date", value: (u, ts) => (ts == null ? "—" : moment(ts)) },
          {
            label: chart.label,
            stroke: "#1f5fa8",
            width: 2,
            points: { show: true, size: 6 },
            value: (u, v) => (v == null ? "—" : `${String(v).replace(".", ",")} ${chart.unit}`),
          },
        ],
        axes: [{ values: (u, splits) => splits.map(day) }, { label: chart.unit }],
        hooks: { draw: [overlay] },
      },
      [chart.times, chart.values],
      figure
    );
    const legend = document.createElement("p");
    legend.className = "muted";
    const parts = chart.limits.map((l) => `seuil ${l.label}`);
    if (chart.alerts.length) parts.push(`${chart.alerts.length} alerte${chart.alerts.length > 1 ? "s" : ""} (triangles)`);
    legend.textContent = parts.join(" · ");
    figure.append(legend);
  }

  async function load(container) {
    const response = await fetch(container.dataset.monitoringCharts, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      container.textContent = "Courbes indisponibles.";
      return;
    }
    const data = await response.json();
    container.replaceChildren();
    for (const chart of data.charts) draw(container, chart);
    container.dataset.loaded = "true";
  }

  function start() {
    for (const container of document.querySelectorAll("[data-monitoring-charts]")) load(container);
    for (const button of document.querySelectorAll("[data-print]")) button.addEventListener("click", () => window.print());
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  // the live refresh replaces the alerts, not the charts: reload them when a new alert arrives
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.target && event.target.id === "alertes") {
      for (const container of document.querySelectorAll("[data-monitoring-charts]")) load(container);
    }
  });
})();
