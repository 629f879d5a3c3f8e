// Tenet console: live pages. A page that shows live state names its stream
// of trust changes (data-changes); on each change the page's main content
// is fetched again and swapped in place, at most once a second, keeping
// focus and scroll. Nothing else runs here.
(function () {
  "use strict";
  var live = document.querySelector("[data-changes]");
  if (!live || !window.EventSource) return;
  var pending = false, seen = 0;
  function refresh() {
    pending = false;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (!fresh || !main) return;
        var y = window.scrollY;
        main.innerHTML = fresh.innerHTML;
        window.scrollTo(0, y);
        var note = document.querySelector("[data-changes]");
        if (note) note.textContent = "Live: " + seen + " trust change(s) since this page opened; updated " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function () {});
  }
  var source = new EventSource(live.getAttribute("data-changes"));
  source.addEventListener("change", function () {
    seen += 1;
    if (!pending) { pending = true; setTimeout(refresh, 1000); }
  });
})();
// Time controls (the trust graph): a slider shows the moment it points at
// while it moves and submits its form when let go, so each moment is a
// page of its own in the browser's history; a checkbox enables the slider
// it names.
(function () {
  "use strict";
  function when(secs) {
    var s = new Date(secs * 1000).toISOString();
    return s.slice(0, 10) + " " + s.slice(11, 16) + " UTC";
  }
  document.querySelectorAll("input[data-submit]").forEach(function (el) {
    var shown = document.getElementById(el.getAttribute("data-shows"));
    el.addEventListener("input", function () { if (shown) shown.textContent = when(+el.value); });
    el.addEventListener("change", function () { if (el.form) el.form.submit(); });
  });
  document.querySelectorAll("input[data-enables]").forEach(function (box) {
    var target = document.getElementById(box.getAttribute("data-enables"));
    if (!target) return;
    box.addEventListener("change", function () {
      target.disabled = !box.checked;
      if (target.form) target.form.submit();
    });
  });
})();
