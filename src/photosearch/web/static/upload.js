// Upload: pick or drop many files; each goes up in its own request with a progress bar, is indexed by
// the server right away, and reports indexed / already there / the server's error.
(function () {
  "use strict";
  const panel = document.getElementById("uploads");
  const list = document.getElementById("upload-list");
  const input = document.getElementById("upload-input");
  const dropzone = document.getElementById("dropzone");
  if (!panel || !input) return;
  const queue = [];
  let busy = false;
  let added = 0;

  function entry(file) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Upload of ${file.name}`);
    const state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "waiting";
    li.append(name, bar, state);
    list.appendChild(li);
    return { li: li, bar: bar, state: state };
  }

  function send(file, ui) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/uploads");
      xhr.setRequestHeader("x-csrf-token", window.PS.csrf);
      xhr.upload.addEventListener("progress", (ev) => {
        if (ev.lengthComputable) ui.bar.value = Math.round((ev.loaded / ev.total) * 90);
        ui.state.textContent = ui.bar.value >= 90 ? "indexing…" : `${ui.bar.value}%`;
      });
      xhr.addEventListener("load", () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        ui.bar.value = 100;
        if (xhr.status >= 200 && xhr.status < 300 && data) {
          ui.li.className = data.status;
          ui.state.textContent = data.status === "duplicate" ? "already in your library (not stored again)" : "indexed";
          if (data.status === "indexed") added += 1;
        } else {
          ui.li.className = "failed";
          ui.state.textContent = "error: " + ((data && data.message) || `upload failed (${xhr.status})`);
        }
        resolve();
      });
      xhr.addEventListener("error", () => { ui.li.className = "failed"; ui.state.textContent = "error: the connection failed"; resolve(); });
      const body = new FormData();
      body.append("file", file);
      xhr.send(body);
    });
  }

  async function drain() {
    if (busy) return;
    busy = true;
    while (queue.length) {
      const job = queue.shift();
      await send(job.file, job.ui);
    }
    busy = false;
    panel.dataset.done = "true";
    if (added) {
      const status = document.getElementById("status");
      status.textContent = `${added} photo${added === 1 ? "" : "s"} uploaded and indexed.`;
    }
  }

  function upload(files) {
    if (!files || !files.length) return;
    panel.hidden = false;
    panel.dataset.done = "false";
    for (const file of files) queue.push({ file: file, ui: entry(file) });
    drain();
  }
  input.addEventListener("change", () => { upload(Array.from(input.files)); input.value = ""; });

  // Dragging files over the page shows two targets: upload, or search by the image.
  let depth = 0;
  document.addEventListener("dragenter", (ev) => { ev.preventDefault(); depth += 1; dropzone.classList.add("active"); });
  document.addEventListener("dragleave", () => { depth -= 1; if (depth <= 0) dropzone.classList.remove("active"); });
  document.addEventListener("dragover", (ev) => ev.preventDefault());
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    depth = 0;
    dropzone.classList.remove("active");
    const files = ev.dataTransfer ? Array.from(ev.dataTransfer.files) : [];
    if (!files.length) return;
    if (ev.target.closest && ev.target.closest("#drop-upload")) upload(files);
    else if (window.PS.imageSearch) window.PS.imageSearch(files[0]);
  });

  window.PS = Object.assign(window.PS || {}, { upload: upload });
})();
