// Live refresh of the Operations page: figures every few seconds, charts every minute.
// Values are written with textContent only (never HTML), so nothing from Redis is interpreted.
(function () {
  "use strict";
  var root = document.getElementById("ops");
  if (!root) { return; }
  var endpoint = root.dataset.endpoint;
  var chartsUrl = root.dataset.charts;
  var every = (parseInt(root.dataset.refresh, 10) || 5) * 1000;

  function format(value, kind) {
    if (value === null || value === undefined) { return "-"; }
    if (kind === "percent") { return value.toFixed(1) + "%"; }
    if (kind === "ms") { return Math.round(value) + " ms"; }
    return String(value);
  }

  function index(data) {
    var view = {now: data.now.replace("T", " ").slice(0, 19), live_workers: data.live_workers,
                queues: {}, jobs: {}, queue_workers: data.queue_workers};
    data.queues.forEach(function (q) { view.queues[q.queue] = q; });
    data.jobs.forEach(function (j) { view.jobs[j.name] = j; });
    return view;
  }

  function lookup(view, path) {
    return path.split(".").reduce(function (node, key) {
      return node === undefined || node === null ? undefined : node[key];
    }, view);
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function render(data) {
    var view = index(data);
    document.querySelectorAll("#ops [data-bind]").forEach(function (el) {
      var value = lookup(view, el.dataset.bind);
      if (value !== undefined) { el.textContent = format(value, el.dataset.format); }
    });
    var status = document.getElementById("ops-status");
    status.className = "alert " + (data.healthy ? "alert-success" : "alert-danger");
    document.getElementById("ops-health").textContent = data.healthy ? "Healthy" : "Problems";
    var list = document.getElementById("ops-problems");
    list.replaceChildren();
    data.problems.forEach(function (p) {
      var li = document.createElement("li");
      li.dataset.code = p.code;
      li.textContent = p.code + " [" + p.subject + "]: " + p.detail;
      list.appendChild(li);
    });
    var body = document.querySelector("#ops-workers tbody");
    body.replaceChildren();
    data.workers.forEach(function (w) {
      var row = document.createElement("tr");
      [w.host, w.pid, w.queues.join(" "), w.threads, w.alive ? "live" : "dead"].forEach(function (t) { cell(row, t); });
      body.appendChild(row);
    });
    var s = data.scheduler;
    document.getElementById("scheduler-state").textContent = s.last_run
      ? s.job + " last ran " + Math.round(s.silent_seconds) + " s ago" : s.job + " never ran";
    document.getElementById("ops-refresh-error").textContent = "";
    root.dataset.refreshed = String((parseInt(root.dataset.refreshed || "0", 10)) + 1);
  }

  function refresh() {
    fetch(endpoint, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(render)
      .catch(function (e) { document.getElementById("ops-refresh-error").textContent = "refresh failed: " + e.message; });
  }

  function refreshCharts() {
    fetch(chartsUrl, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) {
        // Chart specs and tables from our own endpoint (escaped by the server), same origin.
        var box = document.getElementById("ops-charts");
        box.innerHTML = html;
        if (window.autopilotCharts) { window.autopilotCharts.drawAll(box); }
      })
      .catch(function () { /* keep the last charts */ });
  }

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
  setInterval(refresh, every);
  setInterval(refreshCharts, 60000);
})();
