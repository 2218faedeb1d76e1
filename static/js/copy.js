// Copy buttons: <button data-copy="ID"> copies the text of the element #ID to the clipboard and says so in the
// element [data-copy-status="ID"]. A file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  function say(id, text) {
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (status) { status.textContent = text; }
  }
  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var id = button.getAttribute("data-copy");
    var source = document.getElementById(id);
    if (!source) { return; }
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { say(id, "Copied."); }, function () {
        selectText(source);
        say(id, "Selected: press Ctrl+C (⌘C) to copy.");
      });
    } else {
      selectText(source);
      say(id, "Selected: press Ctrl+C (⌘C) to copy.");
    }
  });
})();
