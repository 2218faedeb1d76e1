// The org switcher (and the header's menus, at the end): filter as you type, with each match's path, and the keyboard ("/" or Ctrl-K opens the
// search, arrow keys move, Enter opens, Esc closes). Without JavaScript the <details> still opens and the search
// form submits to /switch/, which searches every organization on the server.
(function () {
  "use strict";

  function text(tag, className, value) {
    var node = document.createElement(tag);
    node.className = className;
    node.textContent = value;
    return node;
  }

  // The list comes in tree order with each item's level, so an item's path is the chain of the nearest items
  // above it with a lower level (within its tenant): no request needed.
  function annotatePaths(list) {
    var stack = [];
    Array.prototype.forEach.call(list.children, function (li) {
      if (li.classList.contains("tenant-head")) {
        stack = [];
        return;
      }
      if (!li.classList.contains("switcher-item")) return;
      var level = Number(li.getAttribute("data-level"));
      var link = li.querySelector("a");
      var name = link.textContent;
      while (stack.length && stack[stack.length - 1].level >= level) stack.pop();
      var path = stack.map(function (entry) { return entry.name; }).join(" › ");
      stack.push({ level: level, name: name });
      link.textContent = "";
      link.appendChild(text("span", "switcher-name", name));
      if (path) link.appendChild(text("span", "switcher-path", path));
      li.switcherName = name;
    });
  }

  function highlight(li, q) {
    var target = li.querySelector(".switcher-name");
    var name = li.switcherName;
    var at = q ? name.toLowerCase().indexOf(q) : -1;
    target.textContent = "";
    if (at < 0) {
      target.textContent = name;
      return;
    }
    target.appendChild(document.createTextNode(name.slice(0, at)));
    target.appendChild(text("mark", "", name.slice(at, at + q.length)));
    target.appendChild(document.createTextNode(name.slice(at + q.length)));
  }

  function setup(switcher) {
    var input = switcher.querySelector("[data-switcher-input]");
    var list = switcher.querySelector("[data-switcher-list]");
    if (!input || !list) return;
    var summary = switcher.querySelector("summary");
    var form = switcher.querySelector("form");
    var more = switcher.querySelector("[data-switcher-more]");
    var none = switcher.querySelector("[data-switcher-none]");
    var status = switcher.querySelector("[data-switcher-status]");
    var keys = switcher.querySelector("[data-switcher-keys]");
    var truncated = switcher.hasAttribute("data-truncated");
    var items = Array.prototype.slice.call(list.querySelectorAll(".switcher-item"));
    var heads = Array.prototype.slice.call(list.querySelectorAll(".tenant-head"));

    annotatePaths(list);
    if (keys) keys.hidden = false;

    function visibleLinks() {
      return items.filter(function (li) { return !li.hidden; }).map(function (li) { return li.querySelector("a"); });
    }

    function filter() {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      items.forEach(function (li) {
        var match = !q || li.getAttribute("data-name").indexOf(q) !== -1;
        li.hidden = !match;
        if (match) {
          shown += 1;
          highlight(li, q);
        }
      });
      heads.forEach(function (head) { head.hidden = Boolean(q); });
      list.classList.toggle("filtering", Boolean(q));
      // Past the cap, or with nothing found here, the server searches every organization.
      if (more) more.hidden = !(q && (shown === 0 || truncated));
      if (none) none.hidden = shown !== 0;
      if (status) {
        status.textContent = q ? shown + (shown === 1 ? " organization matches" : " organizations match") : "";
      }
    }

    function open() {
      switcher.open = true;
      input.focus();
      input.select();
    }

    function close() {
      switcher.open = false;
      summary.focus();
    }

    input.addEventListener("input", filter);
    switcher.addEventListener("toggle", function () {
      if (switcher.open) input.focus();
    });

    form.addEventListener("submit", function (event) {
      // Enter in the search box opens the first match; with none shown, the server-side search page takes over.
      // The "Search all organizations" button (a submitter) always asks the server.
      var links = visibleLinks();
      if (!event.submitter && input.value.trim() && links.length) {
        event.preventDefault();
        window.location.href = links[0].href;
      }
    });

    switcher.addEventListener("keydown", function (event) {
      var links = visibleLinks();
      var index = links.indexOf(document.activeElement);
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        if (links.length) links[Math.min(index + 1, links.length - 1)].focus();
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        if (index <= 0) input.focus();
        else links[index - 1].focus();
      } else if ((event.key === "Home" || event.key === "End") && index !== -1) {
        event.preventDefault();
        links[event.key === "Home" ? 0 : links.length - 1].focus();
      }
    });

    document.addEventListener("keydown", function (event) {
      var active = document.activeElement;
      var typing = active && (/^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) || active.isContentEditable);
      var slash = event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey;
      var ctrlK = (event.key === "k" || event.key === "K") && (event.ctrlKey || event.metaKey);
      if (slash || ctrlK) {
        event.preventDefault();
        open();
      }
    });

    document.addEventListener("click", function (event) {
      if (switcher.open && !switcher.contains(event.target)) switcher.open = false;
    });
  }

  // The header's other menus (details.menu: the account menu, the sections menu, the folded crumbs) work without
  // JavaScript; with it, one menu is open at a time, and a click elsewhere or Esc closes it.
  function setupMenus() {
    var menus = Array.prototype.slice.call(document.querySelectorAll("details.menu, [data-switcher]"));
    menus.forEach(function (menu) {
      menu.addEventListener("toggle", function () {
        if (!menu.open) return;
        menus.forEach(function (other) { if (other !== menu && other.open) other.open = false; });
      });
      if (!menu.classList.contains("menu")) return;
      menu.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && menu.open) {
          event.preventDefault();
          menu.open = false;
          menu.querySelector("summary").focus();
        }
      });
    });
    document.addEventListener("click", function (event) {
      menus.forEach(function (menu) {
        if (menu.open && menu.classList.contains("menu") && !menu.contains(event.target)) menu.open = false;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-switcher]"), setup);
    setupMenus();
  });
})();
