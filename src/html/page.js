// Filtering and expanding only: the page is complete without this script.
(function () {
  "use strict";
  var list = Array.prototype.slice.call(document.querySelectorAll("details.x"));
  var bar = document.getElementById("filters");
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  if (bar && list.length) {
    bar.hidden = false;
    var text = bar.querySelector("input[type=search]");
    var boxes = Array.prototype.slice.call(bar.querySelectorAll("input[type=checkbox][data-f]"));
    var only = bar.querySelector("input[data-only]");
    var shown = bar.querySelector(".shown");
    var haystack = [];
    var apply = function () {
      var q = (text.value || "").toLowerCase();
      var off = {};
      boxes.forEach(function (b) { if (!b.checked) { off[b.getAttribute("data-f") + ":" + b.value] = true; } });
      var flagOnly = only && only.checked;
      var n = 0;
      for (var i = 0; i < list.length; i++) {
        var x = list[i];
        var ok = !off["lane:" + x.getAttribute("data-lane")] && !off["status:" + x.getAttribute("data-status")];
        if (ok && flagOnly) { ok = x.hasAttribute("data-flag"); }
        if (ok && q) {
          if (haystack[i] === undefined) { haystack[i] = x.querySelector("summary").textContent.toLowerCase(); }
          ok = haystack[i].indexOf(q) >= 0;
        }
        x.hidden = !ok;
        if (ok) { n++; }
      }
      shown.textContent = n + " of " + list.length + " shown";
    };
    var timer = null;
    text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
    boxes.concat(only ? [only] : []).forEach(function (b) { b.addEventListener("change", apply); });
    bar.querySelector("[data-expand]").addEventListener("click", function () {
      list.forEach(function (x) { if (!x.hidden) { x.open = true; } });
    });
    bar.querySelector("[data-collapse]").addEventListener("click", function () {
      list.forEach(function (x) { x.open = false; });
    });
    apply();
  }
  // How long the page took to be ready (navigation start to after the load event), for the
  // scale check of large sessions.
  window.addEventListener("load", function () {
    setTimeout(function () {
      document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
    }, 0);
  });
})();
