// Site-wide behaviour. Screen-specific scripts live beside their templates' static files.
//
// htmx 2 swaps nothing on a 4xx/5xx answer and says nothing about it. Here, a form the server
// refused (400 invalid, 409 conflict, 422) comes back re-rendered with its message and the text,
// and is swapped in; any other failed request gets a message next to the form or link that sent
// it, and nothing on the page is replaced, so whatever was typed stays in the form.
(function () {
  "use strict";

  var REFUSED_FORM = [400, 409, 422];

  function isFragment(xhr) {
    return !/<html[\s>]/i.test(xhr.responseText || "");
  }

  // The sentence the server gave: a plain-text answer, or the page's [data-error-message].
  function serverMessage(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    var body = xhr.responseText || "";
    if (type.indexOf("text/plain") === 0) return body.trim().slice(0, 300);
    if (type.indexOf("text/html") !== 0) return "";
    var node = new DOMParser().parseFromString(body, "text/html").querySelector("[data-error-message]");
    return node ? node.textContent.trim() : "";
  }

  function defaultMessage(status) {
    if (status === 0) return "Could not reach the server, so nothing was saved. Check the connection and try again.";
    if (status === 403) return "The server refused this (error 403). Reload the page and try again.";
    if (status === 404) return "This is no longer available (error 404). Reload the page.";
    if (status >= 500) return "The server failed (error " + status + "), so nothing was saved. Try again; tell an admin if it keeps failing.";
    return "The server refused this (error " + status + ").";
  }

  function holdsText(elt) {
    return elt.tagName === "FORM" && elt.querySelector("textarea, input[type=text]") !== null;
  }

  // A form or a panel shows the message inside, at its top; a link, a button or a one-button
  // inline form, right after it (after the inline form's row of tools).
  function messageSlot(sender, create) {
    var elt = sender.matches("form.inline") && sender.parentElement ? sender.parentElement : sender;
    var inside = elt.tagName === "FORM" || elt.tagName === "SECTION";
    var slot = inside ? elt.querySelector(":scope > .request-error") : elt.nextElementSibling;
    if (slot && slot.classList.contains("request-error")) return slot;
    if (!create) return null;
    slot = document.createElement("p");
    slot.className = "request-error error";
    slot.setAttribute("role", "alert");
    if (inside) elt.prepend(slot); else elt.after(slot);
    return slot;
  }

  function showRequestError(elt, text) {
    if (!elt || !elt.isConnected) return;
    var kept = holdsText(elt) ? " Your text is still here." : "";
    messageSlot(elt, true).textContent = text + kept;
  }

  function clearRequestError(elt) {
    var slot = elt && elt.isConnected ? messageSlot(elt, false) : null;
    if (slot) slot.remove();
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (REFUSED_FORM.indexOf(xhr.status) !== -1 && isFragment(xhr)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    showRequestError(event.detail.elt, serverMessage(xhr) || defaultMessage(xhr.status));
  });

  document.addEventListener("htmx:sendError", function (event) {
    showRequestError(event.detail.elt, defaultMessage(0));
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    var sender = event.detail.requestConfig ? event.detail.requestConfig.elt : null;
    if (sender && xhr && xhr.status >= 200 && xhr.status < 300) clearRequestError(sender);
  });

  window.MedSynth = { showRequestError: showRequestError };
})();
