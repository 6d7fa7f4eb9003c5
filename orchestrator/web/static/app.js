// Frontdesk's own script: CSRF header for htmx requests, SLA countdowns, confirmations.
// Everything works without it; it only adds convenience.
(function () {
  "use strict";
  document.addEventListener("htmx:configRequest", function (evt) {
    var token = document.body.dataset.csrf;
    if (token) { evt.detail.headers["X-CSRF-Token"] = token; }
  });

  function fmt(ms) {
    var s = Math.abs(Math.round(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var txt = (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
    return ms < 0 ? "overdue by " + txt : txt + " left";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) { return; }
      var left = due - now;
      el.textContent = fmt(left);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600 * 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
  // Delegated, so buttons swapped in later (the live timeline's Cancel) ask too.
  document.addEventListener("click", function (e) {
    var el = e.target.closest && e.target.closest("[data-confirm]");
    if (el && !window.confirm(el.dataset.confirm)) { e.preventDefault(); }
  });
})();
