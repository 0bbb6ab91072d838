// The builder: drag fields to reorder them (SortableJS; the up/down buttons do the same from the
// keyboard), show the purpose box for personal and sensitive fields and the chosen level's guidance,
// and re-render the editor when a field's type changes (its options depend on the type).
// Without JavaScript the page works with its buttons alone.
(function () {
  "use strict";

  function sortable(root) {
    var list = root.querySelector ? root.querySelector("#field-list") : null;
    if (!list || list.dataset.sortable || typeof Sortable === "undefined") { return; }
    list.dataset.sortable = "1";
    Sortable.create(list, {
      handle: ".drag-handle",
      animation: 150,
      onEnd: function () {
        // The hidden "order" inputs moved with their fields: refresh the preview from the new order.
        list.dispatchEvent(new CustomEvent("fields-sorted", { bubbles: true }));
      }
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-sensitivity]")) {
      var purpose = document.querySelector('[data-purpose-of="' + target.dataset.sensitivity + '"]');
      if (purpose) { purpose.hidden = ["personal", "sensitive"].indexOf(target.value) < 0; }
      var help = document.getElementById(target.dataset.sensitivity + "-level-help");
      var chosen = target.options[target.selectedIndex];
      if (help && chosen && chosen.dataset.help) { help.textContent = chosen.dataset.help; }
    }
    if (target.matches && target.matches("select[data-rerender]")) {
      var refresh = document.getElementById("refresh-button");
      if (refresh) { refresh.click(); }
    }
  });

  document.addEventListener("DOMContentLoaded", function () { sortable(document); });
  document.addEventListener("htmx:load", function (event) { sortable(event.target); });
})();
