// Submits the form marked data-autopost once the page is loaded; without
// JavaScript the form's visible button does the same.
(function () {
  var form = document.querySelector("form[data-autopost]");
  if (form) { form.submit(); }
})();
