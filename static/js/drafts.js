// Nothing typed is lost. Every form of the review item marked data-draft (a note section, a
// dialogue turn, the reject and regeneration comments) is copied to this browser's localStorage
// as the reviewer types, per reviewer, case and form. After a reload, a crash or a new login the
// editor is opened again and the text put back, with a visible hint; a save the server accepted
// (a 2xx answer) removes the copy, and so does Cancel.
(function () {
  "use strict";

  var PREFIX = "medsynth-draft:";
  var MAX_AGE_MS = 14 * 24 * 3600 * 1000;
  var store = null;  // stays null where storage is switched off: the forms work as before
  try { store = window.localStorage; } catch (error) { /* blocked by the browser's settings */ }

  function scope() {
    var item = document.querySelector("[data-draft-scope]");
    return item ? item.getAttribute("data-draft-scope") : null;
  }

  function storageKey(name) {
    var where = scope();
    return where && name ? PREFIX + where + "/" + name : null;
  }

  function keyOf(form) { return storageKey(form.getAttribute("data-draft")); }

  function read(key) {
    try { return store && key ? JSON.parse(store.getItem(key)) : null; } catch (error) { return null; }
  }

  function typedFields(form) {
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name && (field.tagName === "TEXTAREA" || field.tagName === "SELECT" || field.type === "text");
    });
  }

  function baseInput(form) { return form.querySelector("input[name=base_number]"); }

  function write(form) {
    var key = keyOf(form);
    if (!store || !key) return;
    var fields = {};
    typedFields(form).forEach(function (field) { fields[field.name] = field.value; });
    var base = baseInput(form);
    try {
      store.setItem(key, JSON.stringify({ fields: fields, base: base ? base.value : null, at: Date.now() }));
    } catch (error) { /* storage full or switched off: the form still holds the text */ }
  }

  function forget(form) {
    var key = keyOf(form);
    if (store && key) store.removeItem(key);
  }

  function formFor(key) {
    return Array.prototype.find.call(document.querySelectorAll("form[data-draft]"), function (form) {
      return keyOf(form) === key;
    }) || null;
  }

  function hint(form, at) {
    var note = document.createElement("p");
    note.className = "draft-hint";
    note.setAttribute("role", "status");
    note.textContent = "Restored unsaved text you typed " +
      new Date(at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) + ". ";
    var discard = document.createElement("button");
    discard.type = "button";
    discard.className = "link";
    discard.textContent = "Discard it";
    discard.addEventListener("click", function () {
      form.reset();
      var base = baseInput(form);
      if (base && base.dataset.served) base.value = base.dataset.served;
      forget(form);
      note.remove();
    });
    note.appendChild(discard);
    form.prepend(note);
  }

  function restore(form) {
    var draft = read(keyOf(form));
    if (!draft || !draft.fields) return;
    var fields = typedFields(form);
    var differs = fields.some(function (field) {
      return field.name in draft.fields && draft.fields[field.name] !== field.value;
    });
    // The same text, perhaps rebased on a newer version after a conflict: keep that base.
    if (!differs) { write(form); return; }
    fields.forEach(function (field) { if (field.name in draft.fields) field.value = draft.fields[field.name]; });
    // Saved on top of the version it was written on, so a newer version meets it as a
    // conflict (both texts shown) instead of being overwritten.
    var base = baseInput(form);
    if (base && draft.base) { base.dataset.served = base.value; base.value = draft.base; }
    hint(form, draft.at);
  }

  // Open again the editors that have a copy but are not on the page (each opener is the link
  // that opens its editor); restore() fills them in when they arrive.
  function reopen(root) {
    root.querySelectorAll("[data-draft-opener]").forEach(function (opener) {
      var key = storageKey(opener.getAttribute("data-draft-opener"));
      if (read(key) && !formFor(key)) opener.click();
    });
  }

  function dropOldDrafts() {
    for (var i = store ? store.length - 1 : -1; i >= 0; i--) {
      var key = store.key(i);
      if (key && key.indexOf(PREFIX) === 0) {
        var draft = read(key);
        if (!draft || !(Date.now() - draft.at < MAX_AGE_MS)) store.removeItem(key);
      }
    }
  }

  // A save that worked turned version `from` into one that differs only by this form's text, so
  // the other forms of that artefact based on `from` (open editors, the turns' move and delete
  // buttons) are now based on the new version: otherwise the reviewer's own save would make
  // their next one a conflict.
  function followNewVersion(form) {
    var kind = form.getAttribute("data-version-of");
    var base = baseInput(form);
    var label = kind ? document.querySelector("#" + kind + "-panel-head [data-version]") : null;
    if (!base || !label) return;
    document.querySelectorAll('form[data-version-of="' + kind + '"]').forEach(function (other) {
      var otherBase = baseInput(other);
      if (other === form || !otherBase || otherBase.value !== base.value) return;
      otherBase.value = label.getAttribute("data-version");
      if (read(keyOf(other))) write(other);
    });
  }

  function onTyping(event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-draft") && typedFields(form).indexOf(event.target) !== -1) write(form);
  }
  document.addEventListener("input", onTyping);
  document.addEventListener("change", onTyping);

  document.addEventListener("click", function (event) {
    var cancel = event.target.closest ? event.target.closest("[data-draft-discard]") : null;
    var form = cancel ? cancel.closest("form[data-draft]") : null;
    if (form) forget(form);
  });

  // htmx:load comes for the whole page once htmx is ready, then for every piece swapped in.
  document.addEventListener("htmx:load", function (event) {
    var root = event.target;
    var forms = root.matches("form[data-draft]") ? [root] : root.querySelectorAll("form[data-draft]");
    Array.prototype.forEach.call(forms, restore);
    reopen(root);
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    // Not detail.elt: once the form was swapped out, htmx sends this event from an ancestor.
    var form = event.detail.requestConfig ? event.detail.requestConfig.elt : null;
    var xhr = event.detail.xhr;
    if (!form || !form.hasAttribute("data-draft") || !xhr || xhr.status < 200 || xhr.status >= 300) return;
    forget(form);
    followNewVersion(form);
  });

  // Moving, deleting or adding a turn renumbers the turns and redraws the dialogue, which would
  // close the other open turn editors: they are saved or cancelled first.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt.hasAttribute || !elt.hasAttribute("data-renumbers-turns")) return;
    var others = Array.prototype.filter.call(document.querySelectorAll("#dialogue-panel form.turn-form"), function (form) {
      return form !== elt;
    });
    if (others.length) {
      event.preventDefault();
      window.MedSynth.showRequestError(elt, "Save or cancel the open turn first: this change renumbers the turns.");
    }
  });

  dropOldDrafts();
})();
