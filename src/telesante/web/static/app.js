// Small progressive enhancements; the pages work without JavaScript.
// Forms marked data-confirm ask before submitting (no inline handlers: the CSP forbids them).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
