// The desk console's live list: poll /desk/live with If-None-Match; an unchanged list is a
// bodiless 304. A changed one replaces the list, keeping the focus on the same control.
(function () {
  "use strict";
  var list = document.getElementById("desk-list");
  if (!list || !window.fetch) return;
  var url = list.getAttribute("data-live");
  var etag = list.getAttribute("data-etag");
  var every = Math.max(1, parseInt(list.getAttribute("data-every"), 10) || 15) * 1000;
  var status = document.getElementById("desk-updated");
  var busy = false;

  function focusKey() {
    var el = document.activeElement;
    if (!el || !list.contains(el)) return null;
    var row = el.closest("[id]");
    return row ? [row.id, el.getAttribute("name") || el.textContent] : null;
  }

  function restore(key) {
    if (!key) return;
    var row = document.getElementById(key[0]);
    if (!row) return;
    var found = Array.prototype.find.call(
      row.querySelectorAll("a, button, input, select, textarea"),
      function (e) { return (e.getAttribute("name") || e.textContent) === key[1]; });
    if (found) found.focus();
  }

  function poll() {
    if (busy || document.hidden) return;
    // Never while the attendant is typing in the list (a cancel reason), or has typed
    // something there and moved on to its button: replacing the list would lose it.
    if (list.contains(document.activeElement) &&
        /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) return;
    if (Array.prototype.some.call(list.querySelectorAll("input[type=text]"),
                                  function (i) { return i.value !== ""; })) return;
    busy = true;
    fetch(url, { headers: { "If-None-Match": etag, "Accept": "application/json" },
                 credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign(list.getAttribute("data-expired")); return null; }
        if (r.status === 304 || !r.ok) return null;
        etag = r.headers.get("ETag") || etag;
        return r.json();
      })
      .then(function (doc) {
        if (!doc) return;
        var key = focusKey();
        list.innerHTML = doc.html;
        restore(key);
        if (status && doc.updated) status.textContent = doc.updated;
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  setInterval(poll, every);
  document.addEventListener("visibilitychange", poll);
})();
