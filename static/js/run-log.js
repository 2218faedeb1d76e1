/* Canopy: the live tail of an active run (templates/resources/run.html).
   Every second it asks the API for the run (status, times, step results, error) and for the log lines after the
   last one shown (GET /api/v1/runs/{id}/logs?after=<seq>), appends the new lines and updates the status badge;
   it stops once the run is finished (after one last read of the log). The browser's session authenticates the
   GETs. Without JavaScript the page shows the lines it was rendered with and a refresh link.
   Everything from the server is inserted as text, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("run");
  if (!root || root.getAttribute("data-active") !== "true") return;
  var runApi = root.getAttribute("data-run-api");
  var logsApi = root.getAttribute("data-logs-api");
  var sovereign = root.getAttribute("data-sovereign") === "true";
  var after = parseInt(root.getAttribute("data-after"), 10) || 0;
  var ACTIVE = ["queued", "claimed", "running", "stop_requested"];
  var LABELS = { stop_requested: "stop requested" };
  var INTERVAL_MS = 1000;
  var failures = 0;
  var live = document.getElementById("run-live");
  if (live) live.textContent = "Live: new log lines appear as the runtime sends them.";

  function text(tag, value, className) {
    var el = document.createElement(tag);
    el.textContent = value == null ? "" : String(value);
    if (className) el.className = className;
    return el;
  }

  function badgeClass(status) {
    if (status === "succeeded") return "badge ok";
    if (status === "failed" || status === "lost") return "badge no";
    return "badge";
  }

  function setBadge(el, status) {
    el.className = badgeClass(status);
    el.setAttribute("data-status", status);
    el.textContent = LABELS[status] || status;
  }

  function timeCell(iso, full) {
    var cell = document.createElement("time");
    cell.setAttribute("datetime", iso);
    var d = new Date(iso);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var clock = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    cell.textContent = full
      ? d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + clock
      : clock;
    return cell;
  }

  function appendLines(lines) {
    var body = document.getElementById("run-log-lines");
    if (!body || !lines.length) return;
    var empty = body.querySelector(".run-log-empty");
    if (empty) empty.remove();
    lines.forEach(function (line) {
      if (line.seq <= after) return;  // already shown
      var row = document.createElement("tr");
      row.setAttribute("data-seq", line.seq);
      row.appendChild(text("td", line.seq));
      var at = document.createElement("td");
      at.appendChild(timeCell(line.at, false));
      row.appendChild(at);
      row.appendChild(text("td", line.level));
      row.appendChild(line.message ? text("td", line.message)
        : (function () { var td = document.createElement("td"); td.appendChild(text("span", "kept on the runtime", "muted")); return td; })());
      body.appendChild(row);
      after = line.seq;
    });
  }

  function updateRun(run) {
    var badge = document.getElementById("run-status");
    if (badge && badge.getAttribute("data-status") !== run.status) setBadge(badge, run.status);
    [["run-started", run.started_at], ["run-finished", run.finished_at]].forEach(function (pair) {
      var el = document.getElementById(pair[0]);
      if (el && pair[1] && !el.querySelector("time")) {
        el.textContent = "";
        el.appendChild(timeCell(pair[1], true));
      }
    });
    var attempt = document.getElementById("run-attempt");
    if (attempt) attempt.textContent = run.attempt;
    var error = document.getElementById("run-error");
    if (error && run.error) {
      error.hidden = false;
      error.textContent = "";
      error.appendChild(text("p", run.error));
    }
    (run.step_results || []).forEach(function (result) {
      var row = document.querySelector('#run-steps tr[data-index="' + Number(result.index) + '"]');
      if (!row) return;
      var status = row.querySelector(".step-status");
      status.textContent = "";
      var badge = document.createElement("span");
      setBadge(badge, result.status);
      status.appendChild(badge);
      row.querySelector(".step-ms").textContent = result.ms == null ? "" : result.ms + " ms";
      row.querySelector(".step-error").textContent = result.error || "";
    });
    var stop = document.getElementById("run-stop");
    if (stop && (ACTIVE.indexOf(run.status) < 0 || run.status === "stop_requested")) stop.remove();
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  function readLogs() {
    // Pages of 200 until the end: a burst of lines arrives in order, nothing skipped.
    return getJSON(logsApi + "?page_size=200&after=" + after).then(function (page) {
      appendLines(page.results || []);
      if (page.next) return readLogs();
    });
  }

  function tick() {
    var finished = false;
    getJSON(runApi)
      .then(function (run) {
        updateRun(run);
        finished = ACTIVE.indexOf(run.status) < 0;
        return readLogs();  // after the run: a finished run's last lines are all there
      })
      .then(function () {
        failures = 0;
        if (finished) {
          if (live) live.textContent = "The run is finished.";
          return;
        }
        window.setTimeout(tick, INTERVAL_MS);
      })
      .catch(function () {
        failures += 1;  // a network blip or a restart: back off, then keep going; the refresh link still works
        if (live) live.textContent = "Live updates paused (the server did not answer); retrying…";
        window.setTimeout(tick, Math.min(30000, INTERVAL_MS * Math.pow(2, failures)));
      });
  }

  if (sovereign && live) live.textContent += " Only levels and times: the text stays on the runtime.";
  window.setTimeout(tick, INTERVAL_MS);
})();
