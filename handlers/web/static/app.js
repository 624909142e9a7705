// IMAS dashboard: local times (UTC stays on hover) and live refresh. Everything works
// without this file: times read in UTC and a reload shows the latest state.
(function () {
  "use strict";
  function localTimes(root) {
    var fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      if (!/[zZ]|[+-]\d\d:\d\d$/.test(iso)) { iso += "Z"; }
      var d = new Date(iso);
      if (!isNaN(d.getTime())) { el.textContent = fmt.format(d); }
    });
  }
  function busy() {
    var el = document.activeElement;
    if (el && /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) { return true; }
    var dirty = false;
    document.querySelectorAll("textarea, input[type=text], input:not([type])").forEach(function (f) {
      if (f.value && f.closest("form[method=post]")) { dirty = true; }
    });
    return dirty;
  }
  function live() {
    var holder = document.querySelector("[data-live]");
    if (!holder || !window.fetch) { return; }
    var url = holder.getAttribute("data-live") + window.location.search;
    var seen = null;
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          if (seen !== null && body.version !== seen && !busy()) { window.location.reload(); return; }
          seen = body.version;
        })
        .catch(function () {})
        .then(function () { window.setTimeout(poll, 3000); });
    }
    poll();
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); live(); });
})();
