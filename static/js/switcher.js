// The org switcher: filter as you type, keyboard navigation. Without JavaScript the <details> still opens and
// the search form submits to /switch/.
(function () {
  "use strict";

  function setup(switcher) {
    var input = switcher.querySelector("[data-switcher-input]");
    var list = switcher.querySelector("[data-switcher-list]");
    var none = switcher.querySelector("[data-switcher-none]");
    if (!input || !list) return;
    var items = Array.prototype.slice.call(list.querySelectorAll(".switcher-item"));
    var heads = Array.prototype.slice.call(list.querySelectorAll(".tenant-head"));

    function visibleLinks() {
      return items.filter(function (li) { return !li.hidden; }).map(function (li) { return li.querySelector("a"); });
    }

    function filter() {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      items.forEach(function (li) {
        var match = !q || li.getAttribute("data-name").indexOf(q) !== -1;
        li.hidden = !match;
        if (match) shown += 1;
      });
      heads.forEach(function (head) { head.hidden = Boolean(q); });
      list.classList.toggle("filtering", Boolean(q));
      if (none) none.hidden = shown !== 0;
    }

    function open() {
      switcher.open = true;
      input.focus();
      input.select();
    }

    input.addEventListener("input", filter);
    switcher.addEventListener("toggle", function () { if (switcher.open) input.focus(); });

    switcher.querySelector("form").addEventListener("submit", function (event) {
      // Enter opens the first match; with none shown, the server-side search page takes over.
      var links = visibleLinks();
      if (input.value.trim() && links.length) {
        event.preventDefault();
        window.location.href = links[0].href;
      }
    });

    switcher.addEventListener("keydown", function (event) {
      var links = visibleLinks();
      var index = links.indexOf(document.activeElement);
      if (event.key === "Escape") {
        switcher.open = false;
        switcher.querySelector("summary").focus();
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        if (links.length) links[Math.min(index + 1, links.length - 1)].focus();
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        if (index <= 0) input.focus(); else links[index - 1].focus();
      }
    });

    document.addEventListener("keydown", function (event) {
      var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
      if ((event.key === "/" && !typing) || (event.key === "k" && (event.ctrlKey || event.metaKey))) {
        event.preventDefault();
        open();
      }
    });

    document.addEventListener("click", function (event) {
      if (switcher.open && !switcher.contains(event.target)) switcher.open = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-switcher]"), setup);
  });
})();
