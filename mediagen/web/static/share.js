/* share feature script; shared helpers come from window.Mediagen (app.js). */
(() => {
  "use strict";
})();
