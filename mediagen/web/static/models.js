// The model browser: an add reads the model from Replicate first, which takes a moment, so the
// button says so and cannot be pressed twice meanwhile (the server would refuse the second add).
(() => {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.action.endsWith("/models/add")) return;
    if (event.defaultPrevented) return;
    const button = form.querySelector("button[type=submit]");
    if (!button) return;
    if (form.dataset.sending === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Adding…";
  });
})();
