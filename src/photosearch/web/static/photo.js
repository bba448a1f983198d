// Photo page: favorite / archive toggles (PUT /api/assets/{id} with the session's CSRF token).
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const article = document.querySelector("article.photo");
  const statusEl = document.getElementById("photo-status");
  document.querySelectorAll("button.toggle").forEach((button) => {
    button.addEventListener("click", async () => {
      const on = button.getAttribute("aria-pressed") !== "true";
      button.disabled = true;
      try {
        const resp = await fetch(`/api/assets/${article.dataset.asset}`, {
          method: "PUT",
          headers: { "content-type": "application/json", "x-csrf-token": csrf },
          body: JSON.stringify({ [button.dataset.field]: on }),
        });
        const data = await resp.json();
        if (!resp.ok) throw new Error(data.message || `request failed (${resp.status})`);
        button.setAttribute("aria-pressed", String(data[button.dataset.field]));
        statusEl.textContent = `${button.textContent.replace("★", "").trim()}: ${on ? "on" : "off"}.`;
      } catch (err) {
        statusEl.textContent = "Could not save: " + err.message;
      } finally {
        button.disabled = false;
      }
    });
  });
})();
