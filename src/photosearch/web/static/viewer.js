// The full-screen viewer over the grid: the URL names the open photo (?photo=ID; Back closes it), arrows,
// buttons and swipes page through the loaded results, Escape closes and returns focus to the photo's card,
// wheel / pinch / double-click zoom, an info panel, and actions. Neighbours are preloaded.
(function () {
  "use strict";
  const { api, grid } = window.PS;
  const pageData = JSON.parse(document.getElementById("page-data").textContent);
  const root = document.getElementById("viewer");
  const img = document.getElementById("viewer-img");
  const stage = document.getElementById("viewer-stage");
  const title = document.getElementById("viewer-title");
  const details = document.getElementById("viewer-details");
  const statusEl = document.getElementById("viewer-status");
  const favBtn = document.getElementById("viewer-favorite");
  const archBtn = document.getElementById("viewer-archive");
  const info = document.getElementById("viewer-info");
  const infoToggle = document.getElementById("viewer-info-toggle");
  const zoomLevel = document.getElementById("zoom-level");
  const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short", timeZone: "UTC" });

  let index = -1;       // into grid.items; -1 = a photo that is not in the grid (opened from a link)
  let item = null;
  let pushed = false;   // we added the history entry, so closing goes back
  let opener = null;
  let inerted = [];
  const zoom = { s: 1, x: 0, y: 0 };
  const preloaded = new Map();

  function isOpen() { return !root.hidden; }

  function setInert(on) {
    if (on) {
      inerted = [];
      let el = root;
      while (el && el !== document.body) {
        for (const sib of el.parentElement.children) {
          if (sib !== el && !sib.inert && sib.tagName !== "SCRIPT") { sib.inert = true; inerted.push(sib); }
        }
        el = el.parentElement;
      }
    } else { inerted.forEach((el) => { el.inert = false; }); inerted = []; }
  }

  function open(i) {
    opener = document.activeElement;
    showIndex(i);
    const url = new URL(location.href);
    url.searchParams.set("photo", item.id);
    history.pushState({ photo: item.id }, "", url.pathname + url.search);
    pushed = true;
    reveal();
  }
  function reveal() {
    if (isOpen()) return;
    root.hidden = false;
    document.body.classList.add("viewing");
    setInert(true);
    document.getElementById("viewer-close").focus();
  }
  function hide() {
    if (!isOpen()) return;
    root.hidden = true;
    document.body.classList.remove("viewing");
    setInert(false);
    img.removeAttribute("src");
    const card = index >= 0 ? grid.cardAt(index) : null;
    const target = card || (opener && document.contains(opener) ? opener : null);
    if (target) { target.focus({ preventScroll: true }); target.scrollIntoView({ block: "nearest" }); }
    index = -1;
    item = null;
  }
  function close() {
    if (pushed) { pushed = false; history.back(); return; } // popstate -> syncWithUrl -> hide
    const url = new URL(location.href);
    url.searchParams.delete("photo");
    history.replaceState(null, "", url.pathname + url.search);
    hide();
  }

  function preload(it) {
    if (!it || preloaded.has(it.id)) return;
    const im = new Image();
    im.src = it.preview_url;
    preloaded.set(it.id, im);
    if (preloaded.size > 12) preloaded.delete(preloaded.keys().next().value);
  }

  function showIndex(i) {
    index = i;
    show(grid.items[i]);
    preload(grid.items[i + 1]);
    preload(grid.items[i - 1]);
    if (i >= grid.items.length - 3 && window.PS.hasMore()) window.PS.loadMore();
  }
  function show(it) {
    item = it;
    resetZoom();
    img.src = it.preview_url;
    img.alt = it.exif && it.exif.description ? it.exif.description : it.original_file_name;
    title.textContent = it.original_file_name;
    statusEl.textContent = "";
    favBtn.setAttribute("aria-pressed", String(!!it.is_favorite));
    archBtn.setAttribute("aria-pressed", String(!!it.is_archived));
    document.getElementById("viewer-download").href = it.original_url;
    document.getElementById("viewer-download").setAttribute("download", it.original_file_name);
    document.getElementById("viewer-like").href = window.PS.likeUrl(it.id);
    document.getElementById("viewer-prev").disabled = index <= 0;
    document.getElementById("viewer-next").disabled = index < 0 || (index >= grid.items.length - 1 && !window.PS.hasMore());
    renderDetails(it);
    api("GET", `/api/assets/${encodeURIComponent(it.id)}`).then((full) => {
      if (item && item.id === full.id) { item = Object.assign({}, item, full); renderDetails(item); }
    }).catch(() => {});
    root.dataset.photo = it.id;
  }

  function row(label, value, id) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    if (id) dd.id = id;
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
    details.append(dt, dd);
  }
  function renderDetails(it) {
    const e = it.exif || {};
    details.replaceChildren();
    row("Taken", it.local_date_time ? WHEN.format(new Date(it.local_date_time)) : "unknown");
    if (it.width) row("Size", `${it.width} × ${it.height} px` + (it.file_size ? `, ${Math.round(it.file_size / 1024)} KiB` : ""));
    row("Camera", [e.make, e.model].filter(Boolean).join(" "), "viewer-camera");
    row("Lens", e.lens_model);
    const exp = [e.f_number ? `ƒ/${Number(e.f_number).toFixed(1)}` : "", e.exposure_time ? `${e.exposure_time} s` : "",
      e.focal_length ? `${Number(e.focal_length).toFixed(0)} mm` : "", e.iso ? `ISO ${e.iso}` : ""].filter(Boolean).join(" ");
    row("Exposure", exp);
    row("Place", [e.city, e.state, e.country].filter(Boolean).join(", "));
    if (e.latitude !== null && e.latitude !== undefined && e.longitude !== null && e.longitude !== undefined) {
      const span = document.createElement("span");
      span.textContent = `${e.latitude.toFixed(5)}, ${e.longitude.toFixed(5)} · `;
      const a = document.createElement("a");
      a.href = `https://www.openstreetmap.org/?mlat=${e.latitude}&mlon=${e.longitude}#map=14/${e.latitude}/${e.longitude}`;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      a.textContent = "Open map";
      span.appendChild(a);
      row("GPS", span, "viewer-gps");
    }
    if (e.rating !== null && e.rating !== undefined) row("Rating", `${e.rating} / 5`);
    row("Description", e.description);
    if (it.distance !== null && it.distance !== undefined) row("Score", (1 - it.distance).toFixed(3));
    row("File", it.original_path);
    row("Library", pageData.libraries[it.library_id] || it.library_id);
    if (pageData.user.is_admin) row("Owner", pageData.user.email);
  }

  function step(d) {
    if (index < 0) return;
    const j = index + d;
    if (j < 0) return;
    if (j >= grid.items.length) { if (window.PS.hasMore()) window.PS.loadMore(); return; }
    showIndex(j);
    const url = new URL(location.href);
    url.searchParams.set("photo", item.id);
    history.replaceState(history.state, "", url.pathname + url.search);
  }

  // Called by app.js when the grid grew (the next button may come alive) and on popstate.
  function itemsChanged() {
    if (isOpen() && index >= 0) document.getElementById("viewer-next").disabled = index >= grid.items.length - 1 && !window.PS.hasMore();
  }
  async function syncWithUrl() {
    const id = new URLSearchParams(location.search).get("photo");
    if (!id) { pushed = false; hide(); return; }
    if (item && item.id === id && isOpen()) return;
    const i = grid.items.findIndex((it) => it.id === id);
    if (i >= 0) { showIndex(i); reveal(); return; }
    try {
      const it = await api("GET", `/api/assets/${encodeURIComponent(id)}`);
      index = -1;
      show(it);
      reveal();
    } catch (err) { /* a stale or foreign link: stay on the grid */ }
  }

  // ---- actions ---------------------------------------------------------------------------------
  async function setFlag(field, button) {
    if (!item) return;
    const on = button.getAttribute("aria-pressed") !== "true";
    try {
      const updated = await api("PUT", `/api/assets/${item.id}`, { [field]: on });
      button.setAttribute("aria-pressed", String(updated[field]));
      item = Object.assign({}, item, { [field]: updated[field] });
      grid.update(item);
      statusEl.textContent = `${button.textContent.replace("★", "").trim()}: ${on ? "on" : "off"}.`;
    } catch (err) { statusEl.textContent = "Could not save: " + err.message; }
  }
  favBtn.addEventListener("click", () => setFlag("is_favorite", favBtn));
  archBtn.addEventListener("click", () => setFlag("is_archived", archBtn));
  document.getElementById("viewer-trash").addEventListener("click", async () => {
    if (!item) return;
    const id = item.id;
    try {
      await api("POST", "/api/assets/bulk", { ids: [id], action: "trash" });
      const i = index;
      grid.remove([id]);
      if (i >= 0 && grid.items.length) { showIndex(Math.min(i, grid.items.length - 1)); statusEl.textContent = "Moved to the trash."; step(0); }
      else close();
    } catch (err) { statusEl.textContent = "Could not move to the trash: " + err.message; }
  });
  document.getElementById("viewer-close").addEventListener("click", close);
  document.getElementById("viewer-prev").addEventListener("click", () => step(-1));
  document.getElementById("viewer-next").addEventListener("click", () => step(1));
  infoToggle.addEventListener("click", () => {
    info.hidden = !info.hidden;
    infoToggle.setAttribute("aria-expanded", String(!info.hidden));
  });

  // ---- zoom and pan ----------------------------------------------------------------------------
  function applyZoom() {
    img.style.transform = `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.s})`;
    zoomLevel.textContent = `${Math.round(zoom.s * 100)}%`;
    root.dataset.zoom = zoom.s.toFixed(2);
    stage.classList.toggle("zoomed", zoom.s > 1);
  }
  function resetZoom() { zoom.s = 1; zoom.x = 0; zoom.y = 0; applyZoom(); }
  function zoomTo(s, cx, cy) {
    const r = stage.getBoundingClientRect();
    const px = (cx === undefined ? r.left + r.width / 2 : cx) - (r.left + r.width / 2);
    const py = (cy === undefined ? r.top + r.height / 2 : cy) - (r.top + r.height / 2);
    const ns = Math.min(8, Math.max(1, s));
    zoom.x = px - (px - zoom.x) * (ns / zoom.s);
    zoom.y = py - (py - zoom.y) * (ns / zoom.s);
    zoom.s = ns;
    if (ns === 1) { zoom.x = 0; zoom.y = 0; }
    applyZoom();
  }
  stage.addEventListener("wheel", (ev) => { ev.preventDefault(); zoomTo(zoom.s * Math.exp(-ev.deltaY * 0.002), ev.clientX, ev.clientY); }, { passive: false });
  stage.addEventListener("dblclick", (ev) => {
    if (!ev.target.closest("button")) zoomTo(zoom.s > 1 ? 1 : 2.5, ev.clientX, ev.clientY);
  });
  document.getElementById("zoom-in").addEventListener("click", () => zoomTo(zoom.s * 1.5));
  document.getElementById("zoom-out").addEventListener("click", () => zoomTo(zoom.s / 1.5));

  const pointers = new Map();
  let gesture = null;
  stage.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest("button")) return;
    pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    stage.setPointerCapture(ev.pointerId);
    const pts = Array.from(pointers.values());
    if (pts.length === 2) gesture = { pinch: Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y), s: zoom.s };
    else gesture = { x: ev.clientX, y: ev.clientY, zx: zoom.x, zy: zoom.y };
  });
  stage.addEventListener("pointermove", (ev) => {
    if (!pointers.has(ev.pointerId) || !gesture) return;
    pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    const pts = Array.from(pointers.values());
    if (gesture.pinch && pts.length === 2) {
      const d = Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y);
      zoomTo(gesture.s * d / gesture.pinch, (pts[0].x + pts[1].x) / 2, (pts[0].y + pts[1].y) / 2);
    } else if (!gesture.pinch && zoom.s > 1) {
      zoom.x = gesture.zx + ev.clientX - gesture.x;
      zoom.y = gesture.zy + ev.clientY - gesture.y;
      applyZoom();
    }
  });
  function endPointer(ev) {
    if (!pointers.has(ev.pointerId)) return;
    pointers.delete(ev.pointerId);
    if (gesture && !gesture.pinch && zoom.s === 1 && pointers.size === 0) {
      const dx = ev.clientX - gesture.x;
      const dy = ev.clientY - gesture.y;
      if (Math.abs(dx) > 60 && Math.abs(dx) > 2 * Math.abs(dy)) step(dx < 0 ? 1 : -1);
    }
    if (pointers.size === 0) gesture = null;
  }
  stage.addEventListener("pointerup", endPointer);
  stage.addEventListener("pointercancel", endPointer);

  // ---- keyboard --------------------------------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (!isOpen() || ev.defaultPrevented) return;
    const help = document.getElementById("help");
    if (help && help.open) return;
    if (ev.key === "Escape") { ev.preventDefault(); close(); return; }
    if (ev.key === "Tab") { trapFocus(ev); return; }
    if (window.PS.typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const actions = {
      ArrowRight: () => step(1), ArrowLeft: () => step(-1), f: () => favBtn.click(), i: () => infoToggle.click(),
      "+": () => zoomTo(zoom.s * 1.5), "=": () => zoomTo(zoom.s * 1.5), "-": () => zoomTo(zoom.s / 1.5), 0: resetZoom,
    };
    if (actions[ev.key]) { ev.preventDefault(); actions[ev.key](); }
  });
  function trapFocus(ev) {
    const els = Array.from(root.querySelectorAll("button:not([disabled]), a[href], [tabindex]:not([tabindex='-1'])"))
      .filter((el) => el.offsetParent !== null);
    if (!els.length) return;
    const first = els[0];
    const last = els[els.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  }

  window.PS.viewer = { open: open, close: close, isOpen: isOpen, syncWithUrl: syncWithUrl, itemsChanged: itemsChanged };
})();
