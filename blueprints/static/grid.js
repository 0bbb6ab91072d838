// The grid: drag to reorder columns, Escape cancels a cell edit, "select all on this page",
// conflict (409) fragments swapped in place, and a refresh after a bulk change.
// Everything here enhances forms and links that already work without JavaScript.
(function () {
  "use strict";

  function controls() {
    return document.getElementById("grid-controls");
  }

  function submitControls() {
    var form = controls();
    if (form && form.requestSubmit) {
      form.requestSubmit();
    } else if (form) {
      form.submit();
    }
  }

  // Columns: drag the list items (SortableJS); the checkboxes' order is the columns' order.
  function initColumns(root) {
    var list = (root || document).querySelector ? (root || document).querySelector("#grid-columns") : null;
    if (!list && root && root.id === "grid-columns") {
      list = root;
    }
    if (!list || list.dataset.sortable === "on" || typeof window.Sortable === "undefined") {
      return;
    }
    list.dataset.sortable = "on";
    window.Sortable.create(list, {
      handle: ".grid-drag",
      animation: 150,
      onEnd: function (event) {
        if (event.oldIndex !== event.newIndex) {
          submitControls();
        }
      }
    });
  }

  function onLoad(root) {
    initColumns(root);
  }

  document.addEventListener("DOMContentLoaded", function () { onLoad(document); });
  document.body.addEventListener("htmx:load", function (event) { onLoad(event.target); });

  // Escape in a cell editor cancels it (the "Cancel" / "Keep theirs" link).
  document.body.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var form = event.target.closest && event.target.closest(".grid-cell-form");
    if (!form) {
      return;
    }
    var cancel = form.querySelector(".grid-cancel");
    if (cancel) {
      event.preventDefault();
      cancel.click();
    }
  });

  // Double-click on an editable cell opens its editor.
  document.body.addEventListener("dblclick", function (event) {
    var cell = event.target.closest && event.target.closest("td[data-field]");
    var edit = cell && cell.querySelector(".cell-edit");
    if (edit) {
      edit.click();
    }
  });

  // "Select all on this page" also ticks every row's box.
  document.body.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "grid-select-all") {
      document.querySelectorAll('input[name="row"][form="grid-bulk"]').forEach(function (box) {
        box.checked = target.checked;
      });
    } else if (target.name === "row" && !target.checked) {
      var all = document.getElementById("grid-select-all");
      if (all) {
        all.checked = false;
      }
    } else if (target.name === "col" && target.closest("#grid-columns")) {
      submitControls();
    }
  });

  // Buttons that ask first (deleting a saved view).
  document.body.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // A refused edit (403), a conflict (409) or invalid values (422) come back as fragments (the row
  // showing the message, or the bulk report): swap them in. A whole error page is never swapped.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    var fragment = !/^\s*<!doctype/i.test(event.detail.xhr.responseText || "");
    if ([403, 409, 422].indexOf(status) >= 0 && fragment && elt && elt.closest && elt.closest("[data-grid-swap]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // After a bulk change, reload the records shown.
  document.body.addEventListener("grid-changed", function () {
    if (window.htmx && document.getElementById("grid-app")) {
      window.htmx.ajax("GET", window.location.pathname + window.location.search, {target: "#grid-app"});
    }
  });
})();

// After a cell is saved or its edit cancelled, keyboard focus returns to that cell's edit link.
(function () {
  "use strict";
  var lastField = null;
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var cell = elt && elt.closest && elt.closest("td[data-field]");
    lastField = cell && cell.classList.contains("grid-cell-editor") ? cell.getAttribute("data-field") : null;
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (!lastField) {
      return;
    }
    var row = event.detail.target;
    var rowId = row && row.getAttribute && row.getAttribute("data-id");
    var fresh = rowId && document.querySelector('tr[data-id="' + rowId + '"]');
    var link = fresh && fresh.querySelector('td[data-field="' + lastField + '"] .cell-edit');
    if (link) {
      link.focus();
    }
    lastField = null;
  });
})();
