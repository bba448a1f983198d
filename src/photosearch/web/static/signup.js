// First-run sign-up: creates the admin account (POST /api/auth/admin-sign-up logs it in), then opens the photos.
(function () {
  "use strict";
  const statusEl = document.getElementById("signup-status");
  document.getElementById("signup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = { email: f.email.value.trim(), password: f.password.value };
    if (f.name.value.trim()) body.name = f.name.value.trim();
    try {
      const res = await window.PS.api("POST", "/api/auth/admin-sign-up", body);
      const took = res.adopted && res.adopted.assets ? ` It owns the ${res.adopted.assets} photos indexed before.` : "";
      statusEl.textContent = `Account created.${took}`;
      window.location.href = "/";
    } catch (err) { statusEl.textContent = "Could not create the account: " + err.message; }
  });
  document.body.dataset.ready = "true";
})();
