// Forms: datetimes in the browser's time zone, and public links selected in one click.
// No inline script anywhere (Content-Security-Policy: script-src 'self').
//
// The server shows datetimes in the zone of the rb_tz cookie (UTC without it) and reads them back
// in the zone the page says (hidden "tz"), so an unchanged value stays the same instant. Here we
// remember the browser's zone in that cookie; a form first shown in another zone is shown again
// in this one (once, and only a GET's page, never the answer to a POST).
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    zone = "";
  }
  if (zone) {
    document.cookie = "rb_tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
    document.querySelectorAll("input[data-timezone]").forEach(function (input) {
      if (input.value === zone) {
        return;
      }
      var form = input.form;
      var shown = form && form.querySelector('input[type="datetime-local"]');
      if (!shown) {
        input.value = zone; // no datetime on the page was shown in the old zone
        return;
      }
      var again = "rb-zone-reload:" + location.pathname;
      if (input.hasAttribute("data-zone-reload") && !sessionStorage.getItem(again)) {
        sessionStorage.setItem(again, "1");
        location.reload();
      }
    });
  }
  document.querySelectorAll("input[data-copy]").forEach(function (input) {
    input.addEventListener("focus", function () {
      input.select();
    });
  });
})();
