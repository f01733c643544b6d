// TéléAVC case page (docs/domains/stroke.md). Clocks are counted on from the SERVER's time at render
// (data-server-now), never from the browser's clock: a wrong clock on the emergency department's PC changes
// nothing. Live events re-render the case (htmx); a form being filled is never wiped: the refresh waits and says so.
(function () {
  "use strict";

  var timer = null;

  function two(n) {
    return String(n).padStart(2, "0");
  }

  function duration(ms) {
    var total = Math.floor(Math.abs(ms) / 1000);
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor(total / 60) % 60;
    return (hours ? hours + " h " : "") + two(minutes) + " min " + two(total % 60) + " s";
  }

  function setup(root) {
    var serverNow = Date.parse(root.dataset.serverNow);
    var start = performance.now();
    function now() {
      return serverNow + (performance.now() - start);
    }
    function tick() {
      root.querySelectorAll('time[data-clock="since"]').forEach(function (el) {
        el.textContent = duration(now() - Date.parse(el.dataset.from));
      });
      root.querySelectorAll("[data-deadline]").forEach(function (li) {
        var left = Date.parse(li.dataset.deadline) - now();
        var el = li.querySelector('time[data-clock="until"]');
        if (el) el.textContent = left > 0 ? "reste " + duration(left) : "dépassée de " + duration(left);
        li.dataset.state = left <= 0 ? "passed" : left <= Number(li.dataset.warning) * 60000 ? "near" : "ok";
      });
      root.querySelectorAll("[data-target][data-from]").forEach(function (li) {
        var spent = (now() - Date.parse(li.dataset.from)) / 60000;
        var target = Number(li.dataset.target);
        li.dataset.state = spent > target ? "passed" : spent >= target - 5 ? "near" : "ok";
      });
    }
    tick();
    return setInterval(tick, 1000);
  }

  function init() {
    var root = document.querySelector("[data-stroke-case]");
    if (timer) clearInterval(timer);
    timer = root ? setup(root) : null;
  }

  // A form being filled marks itself; the live refresh of the case waits until it is sent.
  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("[data-stroke-case] form");
    if (form) form.dataset.dirty = "1";
  });
  document.addEventListener("htmx:confirm", function (event) {
    var target = event.detail && event.detail.elt;
    if (!target || target.id !== "dossier-avc") return;
    if (target.querySelector("form[data-dirty]")) {
      event.preventDefault();
      var notice = document.getElementById("avc-a-jour");
      if (notice) notice.hidden = false;
    }
  });

  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSwap", init);
})();
