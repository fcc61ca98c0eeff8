// Filtering, expanding and unfolding only: the page is complete without this script.
(function () {
  "use strict";
  var bar = document.getElementById("filters");
  var list = [];
  var haystack = [];
  function refresh() {
    list = Array.prototype.slice.call(document.querySelectorAll("details.x"));
    haystack = [];
  }
  // Folded markup (a noscript element: plain text while scripting is on) becomes elements.
  function build(ns) {
    var t = document.createElement("template");
    t.innerHTML = ns.textContent;
    ns.parentNode.replaceChild(t.content, ns);
  }
  function unfold(block) {
    var ns = block.querySelector(":scope > noscript");
    if (ns) {
      var t = document.createElement("template");
      t.innerHTML = ns.textContent;
      block.parentNode.replaceChild(t.content, block);
    }
  }
  function unfoldAll() {
    var blocks = document.querySelectorAll("[data-lazy]");
    if (!blocks.length) { return; }
    Array.prototype.forEach.call(blocks, unfold);
    refresh();
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-lazy] > .lazy-note"), function (note) {
    note.hidden = false;
    note.querySelector("[data-show]").addEventListener("click", function () {
      unfold(note.parentNode);
      refresh();
    });
  });
  document.addEventListener("toggle", function (ev) {
    var d = ev.target;
    if (d.open && d.classList && d.classList.contains("x")) {
      var ns = d.querySelector(":scope > noscript.xd-lazy");
      if (ns) { build(ns); }
    }
  }, true);
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!id) { return; }
    var el = document.getElementById(id);
    var m = /^x-(\d+)$/.exec(id);
    if (!el && m) {
      var n = Number(m[1]);
      Array.prototype.forEach.call(document.querySelectorAll("[data-lazy][data-from]"), function (b) {
        if (Number(b.getAttribute("data-from")) <= n && n <= Number(b.getAttribute("data-to"))) { unfold(b); }
      });
      refresh();
      el = document.getElementById(id);
    }
    if (el && el.tagName === "DETAILS") {
      el.open = true;
      el.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openTarget);
  refresh();
  openTarget();
  if (bar && list.length) {
    bar.hidden = false;
    var text = bar.querySelector("input[type=search]");
    var boxes = Array.prototype.slice.call(bar.querySelectorAll("input[type=checkbox][data-f]"));
    var only = bar.querySelector("input[data-only]");
    var shown = bar.querySelector(".shown");
    var apply = function () {
      unfoldAll();
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
        if (x.hidden === ok) { x.hidden = !ok; }
        if (ok) { n++; }
      }
      shown.textContent = n + " of " + list.length + " shown";
    };
    var timer = null;
    text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 150); });
    boxes.concat(only ? [only] : []).forEach(function (b) { b.addEventListener("change", apply); });
    bar.querySelector("[data-expand]").addEventListener("click", function () {
      list.forEach(function (x) { if (!x.hidden) { x.open = true; } });
    });
    bar.querySelector("[data-collapse]").addEventListener("click", function () {
      list.forEach(function (x) { x.open = false; });
    });
  }
  // How long the page took to be ready (navigation start to after the load event), for the
  // scale check of large sessions.
  window.addEventListener("load", function () {
    setTimeout(function () {
      document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
    }, 0);
  });
})();
