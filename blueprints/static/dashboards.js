/* Dashboards: draw each chart card with Chart.js from its JSON data block.
 *
 * The page already shows every chart's numbers in a table (readable without
 * JavaScript and by screen readers); when Chart.js is there, this draws the
 * chart above the table and folds the table into its "Numbers" disclosure.
 * The data block is JSON, never executed (the CSP allows no inline script).
 */
(function () {
  "use strict";

  var PALETTE = ["#3b82f6", "#22c55e", "#f97316", "#a855f7", "#ef4444", "#eab308",
    "#14b8a6", "#ec4899", "#64748b", "#84cc16", "#0ea5e9", "#f43f5e"];

  function colours(count) {
    var out = [];
    for (var i = 0; i < count; i++) { out.push(PALETTE[i % PALETTE.length]); }
    return out;
  }

  function config(plot) {
    var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var pie = plot.type === "pie";
    var dataset = {
      label: plot.label,
      data: plot.values,
      backgroundColor: pie ? colours(plot.values.length) : PALETTE[0],
      borderColor: pie ? "#ffffff" : PALETTE[0],
      borderWidth: pie ? 1 : 2,
      tension: 0.2,
      spanGaps: true
    };
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: reduced ? false : undefined,
      plugins: { legend: { display: pie, position: "bottom" } }
    };
    if (!pie) {
      options.scales = { y: { beginAtZero: true } };
    }
    return { type: plot.type, data: { labels: plot.labels, datasets: [dataset] }, options: options };
  }

  function draw(card) {
    var block = card.querySelector("script.chart-data");
    var holder = card.querySelector(".dashboard-canvas");
    var canvas = holder && holder.querySelector("canvas");
    if (!block || !canvas || card.dataset.drawn) { return; }
    var plot;
    try {
      plot = JSON.parse(block.textContent);
    } catch (e) {
      return; // the table still shows the numbers
    }
    holder.hidden = false;
    new window.Chart(canvas, config(plot));
    card.dataset.drawn = "1";
    var details = card.querySelector("details.dashboard-data");
    if (details) { details.open = false; }
  }

  function drawAll() {
    if (typeof window.Chart === "undefined") { return; }
    document.querySelectorAll(".dashboard-card").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
