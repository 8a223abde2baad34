// Draws each dashboard chart from the JSON its figure panel carries (the same rows as the
// table and the CSV), with the vendored Chart.js. Panels arrive by htmx, so drawing runs on
// every swapped-in fragment as well as on the first page load.
(function () {
  "use strict";

  function percent(value) {
    return (Math.round(value * 1000) / 10) + "%";
  }

  function draw(canvas) {
    if (canvas.dataset.drawn || typeof Chart === "undefined") return;
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    var spec = JSON.parse(source.textContent);
    var valueAxis = spec.horizontal ? "x" : "y";
    var categoryAxis = spec.horizontal ? "y" : "x";
    var scales = {};
    scales[valueAxis] = {beginAtZero: true, stacked: spec.stacked, ticks: spec.percent ? {callback: percent} : {}};
    scales[categoryAxis] = {stacked: spec.stacked};
    canvas.dataset.drawn = "1";
    new Chart(canvas, {
      type: spec.type,
      data: {labels: spec.labels, datasets: spec.datasets},
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        animation: false,
        maintainAspectRatio: false,
        scales: scales,
        plugins: {
          tooltip: spec.percent ? {callbacks: {label: function (item) {
            return item.dataset.label + ": " + percent(item.parsed[valueAxis]);
          }}} : {},
        },
      },
    });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function () { drawAll(document); });
})();
