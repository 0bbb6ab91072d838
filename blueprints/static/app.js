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

// A refused reveal (403) or a missing reason (422) comes back as the field's fragment with the
// message: let htmx swap it into the field instead of dropping it as an error response.
(function () {
  "use strict";
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if ((status === 403 || status === 422) && elt && elt.closest && elt.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
