// Draws every <canvas data-chart> with Chart.js: the one place that turns a chart spec from
// app/charts into Chart.js options, so every chart shares its axis rules (see app/charts).
(function () {
  "use strict";
  var DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function format(unit, v) {
    if (v === null || v === undefined) { return "-"; }
    switch (unit) {
      case "count": return Math.round(v).toLocaleString("en");
      case "average": return v.toLocaleString("en", {minimumFractionDigits: 1, maximumFractionDigits: 1});
      case "percent": return v.toFixed(1) + "%";
      case "rate": return (v * 100).toFixed(1) + "%";
      case "ms": return v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms";
      default: return Number.isInteger(v) ? v.toLocaleString("en") : v.toFixed(2);
    }
  }

  // A UTC instant as a tick: hours within a day's step, weekday and date for a day's step.
  function utcTick(ms, stepMs) {
    var d = new Date(ms);
    var hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
    if (stepMs < 86400000) { return hm; }
    return DAYS[d.getUTCDay()] + " " + d.getUTCDate() + "/" + (d.getUTCMonth() + 1);
  }

  function utcFull(ms) {
    var d = new Date(ms);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }

  function valueAxis(spec) {
    var axis = {beginAtZero: true, ticks: {callback: function (v) { return format(spec.unit, v); }}};
    if (spec.unit === "count") { axis.ticks.precision = 0; }
    if (spec.yMax !== null && spec.yMax !== undefined) { axis.max = spec.yMax; }
    return axis;
  }

  function config(spec) {
    var x = spec.x;
    var options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      layout: {padding: {right: 18, left: 4}},
      interaction: {mode: spec.kind === "bubble" ? "nearest" : "index", intersect: spec.kind === "bubble"},
      plugins: {legend: {display: spec.series.length > 1 || spec.kind !== "bubble", position: "bottom"},
                tooltip: {callbacks: {}}},
      scales: {}
    };
    var datasets;
    if (x.type === "time") {
      datasets = spec.series.map(function (s) {
        return {label: s.label, borderColor: s.color, backgroundColor: s.color, spanGaps: false,
                pointRadius: 2, borderWidth: 2,
                data: s.points.map(function (p) { return {x: p[0], y: p[1]}; })};
      });
      options.scales.x = {type: "linear", min: x.min, max: x.max, offset: false,
        title: {display: true, text: x.title},
        ticks: {stepSize: x.step, includeBounds: false, maxRotation: 0, autoSkip: true,
                callback: function (v) { return utcTick(v, x.step); }}};
      options.plugins.tooltip.callbacks.title = function (items) {
        return items.length ? utcFull(items[0].parsed.x) : "";
      };
      options.scales.y = valueAxis(spec);
    } else if (x.type === "category") {
      datasets = spec.series.map(function (s) {
        return {label: s.label, borderColor: s.color, backgroundColor: s.color, spanGaps: false,
                pointRadius: 3, borderWidth: 2, data: s.values};
      });
      options.scales.x = {type: "category", labels: x.labels, title: {display: !!x.title, text: x.title},
                          ticks: {maxRotation: 0, autoSkip: true}};
      options.scales.y = valueAxis(spec);
    } else {  // grid: a punch card, rows are y labels, columns x labels
      var s = spec.series[0];
      datasets = [{label: s.label, data: s.cells.map(function (c) {
        return {x: c.x, y: c.y, r: 3 + 11 * c.share, v: c.v, n: c.n};
      }), backgroundColor: s.cells.map(function (c) {
        return "rgba(0, 114, 178, " + (0.25 + 0.75 * c.share).toFixed(2) + ")";
      }), borderColor: s.color}];
      // Half a step of room around the grid; one tick per row and column, on the whole numbers.
      var wholeTicks = function (labels) {
        return function (axis) { axis.ticks = labels.map(function (_, i) { return {value: i}; }); };
      };
      options.scales.x = {type: "linear", min: -0.5, max: x.labels.length - 0.5,
        title: {display: !!x.title, text: x.title}, afterBuildTicks: wholeTicks(x.labels),
        ticks: {autoSkip: true, maxRotation: 0,
                callback: function (v) { return x.labels[v] === undefined ? "" : x.labels[v]; }}};
      options.scales.y = {type: "linear", min: -0.5, max: spec.y.labels.length - 0.5, reverse: true,
        afterBuildTicks: wholeTicks(spec.y.labels), grid: {display: false},
        ticks: {autoSkip: false, callback: function (v) { return spec.y.labels[v] === undefined ? "" : spec.y.labels[v]; }}};
      options.plugins.legend.display = false;
      options.plugins.tooltip.callbacks.label = function (item) {
        var c = item.raw;
        return spec.y.labels[c.y] + " " + x.labels[c.x] + ": " + format(spec.unit, c.v) +
          (c.n === null || c.n === undefined ? "" : " (" + c.n + " posts)");
      };
    }
    if (spec.kind !== "bubble") {
      options.plugins.tooltip.callbacks.label = function (item) {
        return item.dataset.label + ": " + format(spec.unit, item.parsed.y);
      };
    }
    return {type: spec.kind, data: {datasets: datasets}, options: options};
  }

  function draw(canvas) {
    if (canvas.dataset.drawn === "1" || typeof window.Chart === "undefined") { return; }
    var spec = JSON.parse(canvas.dataset.chart);
    new window.Chart(canvas, config(spec));
    canvas.dataset.drawn = "1";
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  window.autopilotCharts = {drawAll: drawAll, format: format};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  } else {
    drawAll(document);
  }
})();
