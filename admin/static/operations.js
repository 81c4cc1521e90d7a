// Live refresh of the Operations page: the whole live part every few seconds, charts every minute.
// The live part is HTML rendered and escaped by our own server (same origin), swapped in whole,
// so every table (dead letters, publishing, failed slots, workers) is as fresh as the verdict.
// A refresh that fails leaves the last figures but turns the verdict grey and says since when;
// when the session has expired (the server answers with the login page) the page says so.
(function () {
  "use strict";
  var root = document.getElementById("ops");
  if (!root) { return; }
  var liveUrl = root.dataset.live;
  var chartsUrl = root.dataset.charts;
  var loginUrl = root.dataset.login;
  var every = (parseInt(root.dataset.refresh, 10) || 5) * 1000;
  var failingSince = null;

  function clock(date) {
    return date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function menuCount(live) {
    var badge = document.getElementById("ops-menu-count");
    if (!badge || !live) { return; }
    var count = parseInt(live.dataset.problemCount, 10) || 0;
    badge.textContent = count ? count + " problem" + (count > 1 ? "s" : "") : "healthy";
    badge.className = "badge " + (count ? "badge-danger" : "badge-success");
  }

  function stale(reason, expired) {
    if (failingSince === null) { failingSince = new Date(); }
    root.classList.add("ops-stale");
    root.dataset.stale = expired ? "expired" : "failing";
    var status = document.getElementById("ops-status");
    status.className = "alert alert-secondary";
    var note = document.getElementById("ops-stale");
    note.replaceChildren();
    note.appendChild(document.createTextNode(
      " \u2014 stale since " + clock(failingSince) + ": " + reason + ". "));
    if (expired) {
      var link = document.createElement("a");
      link.href = loginUrl + "?next=" + encodeURIComponent(window.location.pathname);
      link.textContent = "Sign in again";
      note.appendChild(link);
    }
    document.getElementById("ops-refresh-error").textContent =
      expired ? "Your session has expired." : "Refresh failed: " + reason + ".";
  }

  function fresh(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var live = holder.querySelector("#ops-live");
    if (!live) { throw new Error("unexpected answer"); }
    document.getElementById("ops-live").replaceWith(live);
    failingSince = null;
    root.classList.remove("ops-stale");
    delete root.dataset.stale;
    document.getElementById("ops-refresh-error").textContent = "";
    menuCount(live);
    root.dataset.refreshed = String((parseInt(root.dataset.refreshed || "0", 10)) + 1);
  }

  function refresh() {
    fetch(liveUrl, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403 || (r.ok && !r.headers.get("X-Ops-Live"))) {
          // Sent to the login page (a redirect followed) instead of the figures.
          stale("the session has expired", true);
          return null;
        }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) { if (html !== null) { fresh(html); } })
      .catch(function (e) { stale(e.message || "no answer", false); });
  }

  function refreshCharts() {
    if (root.dataset.stale) { return; }
    fetch(chartsUrl, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok || r.redirected) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) {
        // Chart specs and tables from our own endpoint (escaped by the server), same origin.
        var box = document.getElementById("ops-charts");
        box.innerHTML = html;
        if (window.autopilotCharts) { window.autopilotCharts.drawAll(box); }
      })
      .catch(function () { /* keep the last charts; the verdict says the page is stale */ });
  }

  // Delegated: the forms are swapped in with the live part.
  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
  menuCount(document.getElementById("ops-live"));
  setInterval(refresh, every);
  setInterval(refreshCharts, 60000);
})();
