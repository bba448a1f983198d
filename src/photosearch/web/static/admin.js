// Admin page: users (add, admin flag, reset password, delete), libraries (add, scan with live progress
// from the jobs API, the files that failed). Every change goes through the JSON API with the CSRF header.
(function () {
  "use strict";
  const { api } = window.PS;
  const usersStatus = document.getElementById("users-status");
  const libsStatus = document.getElementById("libraries-status");

  document.getElementById("user-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = { email: f.email.value.trim(), password: f.password.value, is_admin: f.is_admin.checked };
    if (f.name.value.trim()) body.name = f.name.value.trim();
    try {
      const u = await api("POST", "/api/users", body);
      usersStatus.textContent = `Added ${u.email}. Reloading…`;
      location.reload();
    } catch (err) { usersStatus.textContent = "Could not add the user: " + err.message; }
  });

  document.getElementById("users-table").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const tr = b.closest("tr");
    const id = tr.dataset.user;
    const email = tr.dataset.email;
    try {
      if (b.dataset.action === "admin") {
        await api("PUT", `/api/users/${id}`, { is_admin: b.dataset.admin === "true" });
        location.reload();
      } else if (b.dataset.action === "password") {
        const pw = window.prompt(`New password for ${email}:`);
        if (!pw) return;
        await api("PUT", `/api/users/${id}/password`, { password: pw });
        usersStatus.textContent = `Password of ${email} changed; their sessions ended.`;
      } else if (b.dataset.action === "delete") {
        if (!window.confirm(`Delete ${email} with their libraries' index? Files on disk stay.`)) return;
        const res = await api("DELETE", `/api/users/${id}`);
        tr.remove();
        usersStatus.textContent = `Deleted ${res.email} (${res.assets} photos, ${res.libraries} libraries removed from the index).`;
      }
    } catch (err) { usersStatus.textContent = "Could not do that: " + err.message; }
  });

  document.getElementById("library-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const paths = f.paths.value.split("\n").map((s) => s.trim()).filter(Boolean);
    try {
      const lib = await api("POST", "/api/libraries", { name: f.name.value.trim(), import_paths: paths, owner_id: f.owner_id.value });
      libsStatus.textContent = `Added ${lib.name}. Reloading…`;
      location.reload();
    } catch (err) { libsStatus.textContent = "Could not add the library: " + err.message; }
  });

  function describe(job) {
    const p = job.progress || {};
    if (job.status === "queued") return "waiting for another scan…";
    if (job.status === "running") {
      if (p.phase === "scan") return `looking for files: ${p.scanned || 0} found`;
      if (p.phase === "index") return `indexing ${p.done || 0} of ${p.total || 0}${p.errors ? `, ${p.errors} failed` : ""}`;
      return "finishing…";
    }
    if (job.status === "succeeded") {
      const s = job.summary || {};
      return `done: ${s.new || 0} new, ${s.updated || 0} updated, ${s.unchanged || 0} unchanged, ${s.errors || 0} failed`;
    }
    return `${job.status}: ${job.error || ""}`;
  }
  async function follow(tr, job) {
    const bar = tr.querySelector("progress");
    const state = tr.querySelector(".scan-state");
    const button = tr.querySelector('[data-action="scan"]');
    bar.hidden = false;
    button.disabled = true;
    tr.dataset.job = job.id;
    for (;;) {
      const p = job.progress || {};
      if (p.total) { bar.max = p.total; bar.value = p.done || 0; } else bar.removeAttribute("value");
      state.textContent = describe(job);
      if (!["queued", "running"].includes(job.status)) break;
      await new Promise((r) => setTimeout(r, 400));
      job = await api("GET", `/api/jobs/${job.id}`);
    }
    bar.max = 1;
    bar.value = job.status === "succeeded" ? 1 : 0;
    button.disabled = false;
    tr.dataset.jobStatus = job.status;
    const lib = await api("GET", `/api/libraries/${tr.dataset.library}`);
    tr.querySelector(".lib-assets").textContent = String(lib.assets);
  }

  document.getElementById("libraries-table").addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const tr = b.closest("tr");
    try {
      if (b.dataset.action === "scan") {
        const job = await api("POST", `/api/libraries/${tr.dataset.library}/scan`);
        await follow(tr, job);
      } else if (b.dataset.action === "errors") {
        const data = await api("GET", `/api/libraries/${tr.dataset.library}/errors`);
        const panel = document.getElementById("errors-panel");
        const body = document.getElementById("errors-body");
        body.replaceChildren();
        for (const e of data.errors) {
          const row = document.createElement("tr");
          for (const v of [e.path, e.reason, e.detail]) { const td = document.createElement("td"); td.textContent = v || ""; row.appendChild(td); }
          body.appendChild(row);
        }
        if (!data.errors.length) {
          const row = document.createElement("tr");
          const td = document.createElement("td");
          td.colSpan = 3;
          td.textContent = "No file failed in this library.";
          row.appendChild(td);
          body.appendChild(row);
        }
        document.getElementById("errors-title").textContent = `Files of ${tr.dataset.name} that could not be indexed`;
        panel.hidden = false;
      }
    } catch (err) { libsStatus.textContent = "Could not do that: " + err.message; }
  });

  // A scan already running (started elsewhere) shows its progress too.
  api("GET", "/api/jobs").then((jobs) => {
    for (const job of jobs.filter((j) => ["queued", "running"].includes(j.status))) {
      const tr = document.querySelector(`tr[data-library="${job.library_id}"]`);
      if (tr) follow(tr, job);
    }
  }).catch(() => {});
  document.body.dataset.ready = "true";
})();
