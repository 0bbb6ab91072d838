// A record's page: the "Mention someone" list writes "@Name " into the comment box where the cursor is.
// Without JavaScript the chosen person is sent with the form instead, and mentioned by the server.
(function () {
  "use strict";
  document.body.addEventListener("change", function (event) {
    var picker = event.target;
    if (!picker.matches || !picker.matches("select[data-mention-picker]")) {
      return;
    }
    var option = picker.options[picker.selectedIndex];
    var name = option && option.getAttribute("data-name");
    var form = picker.closest("form");
    var box = form && form.querySelector("textarea[name=body]");
    if (!name || !box) {
      return;
    }
    var start = box.selectionStart || box.value.length;
    var end = box.selectionEnd || start;
    var before = box.value.slice(0, start);
    var text = (before && !/\s$/.test(before) ? " " : "") + "@" + name + " ";
    box.value = before + text + box.value.slice(end);
    picker.value = "";  // mentioned in the text now; not sent twice
    box.focus();
    var caret = before.length + text.length;
    box.setSelectionRange(caret, caret);
  });
})();
