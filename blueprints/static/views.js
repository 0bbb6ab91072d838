// Kanban boards: drag a card to another column (SortableJS). The move is a POST of the card's
// "Move to" form (record, version, target column, CSRF token) asking for JSON; when the server
// refuses (a conflict, an invalid value, no right), the card goes back where it was and the
// message is read out in the board's aria-live region. Without JavaScript the forms still work.
(function () {
  "use strict";
  var board = document.getElementById("kanban");
  var status = document.getElementById("kanban-status");
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!board || !board.hasAttribute("data-draggable") || typeof Sortable === "undefined") {
    return;
  }

  function announce(message, failed) {
    if (!status) { return; }
    status.textContent = message;
    status.classList.toggle("visually-hidden", false);
    status.classList.toggle("notice", true);
    status.classList.toggle("notice-error", !!failed);
    status.classList.toggle("notice-success", !failed);
  }

  function bump(list, delta) {
    var column = list.closest(".kanban-column");
    var count = column && column.querySelector(".kanban-count");
    if (!count) { return; }
    var value = parseInt(count.getAttribute("data-count"), 10) + delta;
    count.setAttribute("data-count", String(value));
    count.textContent = String(value);
  }

  function putBack(event) {
    var before = event.from.children[event.oldIndex];  // the card is no longer among them
    event.from.insertBefore(event.item, before || null);
  }

  function moved(event) {
    if (event.from === event.to) { return; }
    var card = event.item;
    var form = card.querySelector("form.move-form");
    if (!form) { putBack(event); return; }
    var target = event.to.getAttribute("data-column");
    var data = new FormData(form);
    data.set("to", target);
    bump(event.from, -1);
    bump(event.to, 1);
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": meta ? meta.getAttribute("content") : "" }
    }).then(function (response) {
      return response.json().catch(function () { return { ok: false }; }).then(function (body) {
        if (response.ok && body.ok) {
          card.setAttribute("data-version", String(body.version));
          form.querySelector('input[name="version"]').value = String(body.version);
          form.querySelector('select[name="to"]').value = target;
          announce(body.message, false);
          return;
        }
        throw new Error(body.message || board.getAttribute("data-failed") || "");
      });
    }).catch(function (error) {
      bump(event.to, -1);
      bump(event.from, 1);
      putBack(event);
      announce(error.message || board.getAttribute("data-failed"), true);
    });
  }

  Array.prototype.forEach.call(board.querySelectorAll(".kanban-cards"), function (list) {
    Sortable.create(list, {
      group: "kanban",
      draggable: ".kanban-card",
      sort: false,  // a column's order is the view's sort: cards only change columns
      filter: "a, select, button, input, label",
      preventOnFilter: false,
      animation: 150,
      onEnd: moved
    });
  });
})();
