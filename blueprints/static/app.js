// Recordbase pages: send the CSRF token with every state-changing htmx request.
// (No inline script anywhere: the Content-Security-Policy allows scripts from this origin only.)
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (event) {
    var verb = (event.detail.verb || "get").toUpperCase();
    if (meta && ["GET", "HEAD", "OPTIONS"].indexOf(verb) < 0) {
      event.detail.headers["X-CSRFToken"] = meta.getAttribute("content");
    }
  });
})();
