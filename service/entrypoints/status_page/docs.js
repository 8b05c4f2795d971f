// Swagger UI for the admin API. The OpenAPI document is behind the token too, so every
// request Swagger makes carries the token this tab holds (from #token=... or the status
// page); the Authorize button sets it as well and persists it.
(function () {
  "use strict";
  var KEY = "ucaas-sync.admin-token";
  var match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  if (!window.SwaggerUIBundle) return; // offline: the page says where the document is
  window.ui = window.SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: false,
    persistAuthorization: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      var token = sessionStorage.getItem(KEY);
      if (token && !request.headers.Authorization) {
        request.headers.Authorization = "Bearer " + token;
      }
      return request;
    },
  });
})();
