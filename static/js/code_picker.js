// The batch form's code picker. The comma-separated field stays the one source of truth
// (typed codes work as before, and without this script); the search box fills a listbox from
// the server (htmx), arrow keys move through it, Enter or a click adds the code to the field,
// and a chip per code in the field shows what is chosen, with a button to remove it.
(function () {
  "use strict";

  function compact(code) {
    return code.replace(/[.\s"'`]/g, "").toUpperCase();
  }

  function listed(input) {
    return input.value.split(",").map(function (code) { return code.trim(); }).filter(Boolean);
  }

  function setListed(input, codes) {
    input.value = codes.join(", ");
    input.dispatchEvent(new Event("change", { bubbles: true })); // the preview listens
  }

  function renderChips(picker, input) {
    var chips = picker.querySelector("[data-code-chips]");
    chips.textContent = "";
    listed(input).forEach(function (code) {
      var chip = document.createElement("li");
      chip.className = "code-chip";
      chip.dataset.code = code;
      chip.append(code + " ");
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.setAttribute("aria-label", "Remove " + code);
      remove.textContent = "×";
      remove.addEventListener("click", function () {
        setListed(input, listed(input).filter(function (other) { return compact(other) !== compact(code); }));
        renderChips(picker, input);
      });
      chip.append(remove);
      chips.append(chip);
    });
  }

  function setup(picker) {
    var input = document.getElementById(picker.dataset.codesInput);
    var search = picker.querySelector("[data-code-search]");
    var active = -1;

    function listbox() { return document.getElementById("code-options"); }
    function options() { return Array.prototype.slice.call(listbox().querySelectorAll("[role=option]")); }

    function highlight(index) {
      var all = options();
      active = all.length ? (index + all.length) % all.length : -1;
      all.forEach(function (option, i) { option.setAttribute("aria-selected", String(i === active)); });
      if (active >= 0) {
        search.setAttribute("aria-activedescendant", all[active].id);
        all[active].scrollIntoView({ block: "nearest" });
      } else {
        search.removeAttribute("aria-activedescendant");
      }
    }

    function close() {
      listbox().hidden = true;
      search.setAttribute("aria-expanded", "false");
      highlight(-1);
    }

    function pick(option) {
      var code = option.dataset.code;
      var codes = listed(input);
      if (!codes.some(function (other) { return compact(other) === compact(code); })) codes.push(code);
      setListed(input, codes);
      renderChips(picker, input);
      search.value = "";
      close();
      search.focus();
    }

    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault(); // Enter in the search never submits the form
      if (listbox().hidden || !options().length) return;
      if (event.key === "ArrowDown") highlight(active + 1);
      else if (event.key === "ArrowUp") highlight(active - 1);
      else if (event.key === "Enter" && active >= 0) pick(options()[active]);
      else if (event.key === "Escape") close();
      else return;
      event.preventDefault();
    });
    // The options come and go with each answer: listen on the picker, not on them.
    picker.addEventListener("mousedown", function (event) {
      var option = event.target.closest("[role=option]");
      if (option) {
        event.preventDefault();
        pick(option);
      }
    });
    picker.addEventListener("htmx:afterSwap", function () {
      var found = options().length > 0;
      search.setAttribute("aria-expanded", String(!listbox().hidden));
      highlight(found ? 0 : -1);
    });
    search.addEventListener("blur", close); // a click on an option keeps the focus (mousedown above)
    input.addEventListener("input", function () { renderChips(picker, input); });
    renderChips(picker, input);
  }

  function init() {
    document.querySelectorAll("[data-code-picker]").forEach(setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
