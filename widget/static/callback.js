// The widget's popup hands its result back to the page that opened it, addressed to
// each origin the partner registered: a page on any other origin receives nothing.
(function () {
  "use strict";
  var node = document.getElementById("interops-widget-result");
  if (!node || !window.opener) { return; }
  var payload = JSON.parse(node.textContent);
  payload.targets.forEach(function (origin) {
    window.opener.postMessage(payload.message, origin);
  });
})();
