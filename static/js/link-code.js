/* Canopy: a one-time code that an e-mailed link carries in its fragment (after "#") goes into the page's form.
   Browsers never send the fragment to a server, so the code lands in no access log; the address bar forgets it
   at once. Forms marked data-autosubmit are sent straight away (opening an invitation, verifying an address);
   otherwise the filled field is hidden and the next field gets the focus (choosing a new password).
   Without JavaScript, the person pastes the code printed in the same e-mail. */
(function () {
  "use strict";
  var code = window.location.hash.replace(/^#/, "");
  var input = document.querySelector("[data-link-code]");
  if (!code || !input) return;
  try { code = decodeURIComponent(code); } catch (e) { /* keep it as it came */ }
  input.value = code;
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  var form = input.form;
  if (form && form.hasAttribute("data-autosubmit")) {
    form.submit();
    return;
  }
  var field = input.closest(".field");
  if (field) field.hidden = true;
  var next = form && form.querySelector("input:not([type=hidden]):not([data-link-code])");
  if (next) next.focus();
})();
