// Keyboard shortcuts of the review workspace. Each shortcut clicks or focuses a visible
// control that the mouse can use too; nothing happens while the reviewer types.
(function () {
  "use strict";

  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function helpOverlay() { return document.getElementById("shortcut-help"); }

  function toggleHelp(show) {
    var overlay = helpOverlay();
    if (!overlay) return;
    overlay.hidden = show === undefined ? !overlay.hidden : !show;
    if (!overlay.hidden) {
      var close = overlay.querySelector("button");
      if (close) close.focus();
    }
  }

  function clickFirst(selector) {
    var element = document.querySelector(selector);
    if (element) { element.click(); return true; }
    return false;
  }

  function focusFirst(selector) {
    var element = document.querySelector(selector);
    if (element) {
      element.scrollIntoView({ block: "center" });
      element.focus();
      return true;
    }
    return false;
  }

  var actions = {
    a: function () { return clickFirst('#decision-form button[data-shortcut="a"]'); },
    s: function () { return clickFirst('#decision-form button[data-shortcut="s"]'); },
    r: function () { return focusFirst("#decision-form select[name=reason]"); },
    g: function () { return focusFirst("#regenerate-form textarea[name=comment]"); },
    e: function () { return clickFirst("[data-edit]"); },
    j: function () { return clickFirst('a[data-shortcut="j"]'); },
    k: function () { return clickFirst('a[data-shortcut="k"]'); },
    "?": function () { toggleHelp(); return true; }
  };

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var overlay = helpOverlay();
      if (overlay && !overlay.hidden) { toggleHelp(false); event.preventDefault(); return; }
      if (isTyping(event.target)) { event.target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    var action = actions[event.key];
    if (action && action()) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest ? event.target.closest("[data-help-toggle]") : null;
    if (toggle) { toggleHelp(); }
    var close = event.target.closest ? event.target.closest("[data-close-panel]") : null;
    if (close) {
      // Leave an empty placeholder with the same id, so the panel can be opened again.
      var panel = close.closest(".panel");
      var placeholder = document.createElement("div");
      placeholder.id = panel.id;
      panel.replaceWith(placeholder);
    }
  });

  // An inline edit form that htmx just swapped in gets the focus, so typing starts at once.
  document.addEventListener("htmx:afterSwap", function (event) {
    var field = event.detail.target && event.detail.target.querySelector
      ? event.detail.target.querySelector(".edit-form textarea")
      : null;
    if (field) { field.focus(); }
  });
})();
