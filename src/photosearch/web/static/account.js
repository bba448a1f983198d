// Account page: change your password, create and revoke your API keys.
(function () {
  "use strict";
  const { api } = window.PS;
  const pwStatus = document.getElementById("password-status");
  const keysStatus = document.getElementById("keys-status");

  document.getElementById("password-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const res = await api("PUT", "/api/users/me/password", { current_password: f.current_password.value, new_password: f.new_password.value });
      if (res && res.csrf_token) {
        window.PS.csrf = res.csrf_token;
        document.querySelectorAll('input[name="csrf_token"]').forEach((i) => { i.value = res.csrf_token; });
      }
      f.reset();
      pwStatus.textContent = "Password changed. Other devices have been logged out.";
    } catch (err) { pwStatus.textContent = "Could not change the password: " + err.message; }
  });

  document.getElementById("key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const key = await api("POST", "/api/users/me/api-keys", { name: f.name.value.trim() });
      document.getElementById("key-secret").textContent = key.secret;
      document.getElementById("key-created").hidden = false;
      const tr = document.createElement("tr");
      tr.dataset.key = key.id;
      for (const v of [key.name, key.prefix + "…", key.created_at.slice(0, 10), "never"]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      const td = document.createElement("td");
      const b = document.createElement("button");
      b.type = "button"; b.className = "danger"; b.dataset.action = "revoke"; b.textContent = "Revoke";
      b.setAttribute("aria-label", `Revoke ${key.name}`);
      td.appendChild(b); tr.appendChild(td);
      document.querySelector("#keys-table tbody").appendChild(tr);
      f.reset();
      keysStatus.textContent = `Created ${key.name}.`;
    } catch (err) { keysStatus.textContent = "Could not create the key: " + err.message; }
  });

  document.getElementById("keys-table").addEventListener("click", async (ev) => {
    const b = ev.target.closest('button[data-action="revoke"]');
    if (!b) return;
    const tr = b.closest("tr");
    try {
      await api("DELETE", `/api/users/me/api-keys/${tr.dataset.key}`);
      tr.remove();
      keysStatus.textContent = "Key revoked.";
    } catch (err) { keysStatus.textContent = "Could not revoke: " + err.message; }
  });
  document.body.dataset.ready = "true";
})();
