// photosearch web UI: search form, image drop, infinite scroll. Plain JS, no build step.
// It talks to the same JSON API as scripts do; the session cookie + x-csrf-token header authenticate it.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const form = document.getElementById("search-form");
  const q = document.getElementById("q");
  const results = document.getElementById("results");
  const statusEl = document.getElementById("status");
  const sentinel = document.getElementById("sentinel");
  const imageInput = document.getElementById("image-input");
  const imageLabel = document.getElementById("image-label");
  const dropzone = document.getElementById("dropzone");
  const queryInfo = document.getElementById("query-info");
  const queryThumb = document.getElementById("query-thumb");
  const queryLabel = document.getElementById("query-label");
  const totalAssets = Number(statusEl.dataset.assets || 0);
  // Page size: 48 thumbnails, or ?size=N (1-200) from the address.
  const pageSize = Math.min(200, Math.max(1, Number(new URLSearchParams(location.search).get("size")) || 48));

  // What is being searched: {kind: "text"|"image"|"like", ...}; page = next page to fetch (null = done).
  let current = null;
  let nextPage = null;
  let loading = false;
  let generation = 0; // ignore late answers to superseded searches

  function filters() {
    const f = {};
    const data = new FormData(form);
    for (const [k, v] of data.entries()) {
      if (k === "query" || v === "" || v === "any") continue;
      if (k === "taken_after" || k === "taken_before") f[k] = v + "T00:00:00";
      else if (k === "is_favorite" || k === "is_archived") f[k] = v === "true";
      else if (k === "rating_min") f[k] = Number(v);
      else if (k === "library_id") f.library_ids = [v];
      else f[k] = String(v);
    }
    if (data.get("is_archived") === "any") f.is_archived = null;
    return f;
  }

  function setStatus(text) {
    statusEl.textContent = text;
  }

  async function fetchPage(search, page) {
    let resp;
    if (search.kind === "text") {
      resp = await fetch("/api/search/smart", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(Object.assign({ query: search.text, page: page, size: pageSize }, search.filters)),
      });
    } else if (search.kind === "image") {
      const body = new FormData();
      body.append("file", search.file);
      body.append("filters", JSON.stringify(search.filters));
      body.append("page", String(page));
      body.append("size", String(pageSize));
      resp = await fetch("/api/search/image", { method: "POST", headers: { "x-csrf-token": csrf }, body: body });
    } else if (search.kind === "like") {
      resp = await fetch(`/api/assets/${encodeURIComponent(search.id)}/similar?page=${page}&size=${pageSize}`);
    } else {
      resp = await fetch(`/api/assets?page=${page}&size=${pageSize}`);
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    if (!resp.ok) throw new Error((data && data.message) || `request failed (${resp.status})`);
    return data;
  }

  function card(item) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `/photos/${item.id}`;
    a.className = "card";
    const img = document.createElement("img");
    img.src = item.thumbnail_url;
    img.loading = "lazy";
    img.alt = item.exif && item.exif.description ? item.exif.description : item.original_file_name;
    a.appendChild(img);
    a.setAttribute("aria-label", item.original_file_name);
    li.appendChild(a);
    return li;
  }

  function explainEmpty(data, search) {
    if (!data.total_indexed && totalAssets === 0) {
      return "No photos are indexed yet. Add a library and index it (photosearch libraries add …), then search again.";
    }
    if (!data.total_indexed) {
      return "Your photos are still being indexed: none has an embedding yet. Try again in a moment.";
    }
    const active = Object.keys(search.filters || {}).length;
    return active
      ? `No matches among ${data.total_indexed} indexed photos with these filters. Try removing some filters.`
      : `No matches among ${data.total_indexed} indexed photos.`;
  }

  async function loadMore() {
    if (loading || current === null || nextPage === null) return;
    loading = true;
    const gen = generation;
    const search = current;
    const page = nextPage;
    if (page === 1 && search.kind !== "recent") setStatus("Searching…");
    try {
      const data = await fetchPage(search, page);
      if (gen !== generation) return;
      data.items.forEach((item) => results.appendChild(card(item)));
      nextPage = data.next_page || null;
      const shown = results.children.length;
      if (search.kind === "recent") {
        if (shown === 0) setStatus(statusEl.textContent);
        else setStatus(`Your ${shown}${nextPage ? "+" : ""} most recent photos. Describe what you are looking for to search.`);
      } else if (shown === 0) setStatus(explainEmpty(data, search));
      else setStatus(`${shown} photo${shown === 1 ? "" : "s"} shown${nextPage ? "; scroll for more" : ""}.`);
    } catch (err) {
      if (gen === generation) { setStatus("Search failed: " + err.message); nextPage = null; }
    } finally {
      if (gen === generation) loading = false;
    }
    if (gen === generation && nextPage !== null && isNearBottom()) loadMore();
  }

  function isNearBottom() {
    return sentinel.getBoundingClientRect().top < window.innerHeight + 600;
  }

  function start(search) {
    generation += 1;
    loading = false;
    current = search;
    nextPage = 1;
    results.innerHTML = "";
    queryInfo.hidden = search.kind === "text" || search.kind === "recent";
    queryThumb.hidden = search.kind !== "image";
    if (search.kind === "image") {
      queryThumb.src = URL.createObjectURL(search.file);
      queryLabel.textContent = `Photos like ${search.file.name}`;
    } else if (search.kind === "like") {
      queryLabel.textContent = "Photos like the one you opened";
    }
    loadMore();
  }

  function saveUrl(search) {
    const params = new URLSearchParams();
    if (search.kind === "text") params.set("q", search.text);
    if (search.kind === "like") params.set("like", search.id);
    for (const [k, v] of new FormData(form).entries()) if (k !== "query" && v !== "") params.set(k, v);
    if (pageSize !== 48) params.set("size", String(pageSize));
    history.replaceState(null, "", "/?" + params.toString());
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = q.value.trim();
    if (!text) { q.focus(); setStatus("Type what you are looking for, or search by image."); return; }
    const search = { kind: "text", text: text, filters: filters() };
    saveUrl(search);
    start(search);
  });

  document.getElementById("clear-filters").addEventListener("click", () => {
    form.querySelectorAll(".filters input, .filters select").forEach((el) => { el.value = ""; });
    if (current && (current.kind === "text" || current.kind === "image")) { current.filters = {}; start(current); }
  });
  form.querySelectorAll(".filters select").forEach((el) =>
    el.addEventListener("change", () => {
      if (current && (current.kind === "text" || current.kind === "image")) { current.filters = filters(); start(current); }
    }));

  function imageSearch(file) {
    if (!file) return;
    if (!file.type.startsWith("image/") && file.type !== "") { setStatus("That file is not an image."); return; }
    start({ kind: "image", file: file, filters: filters() });
  }
  imageInput.addEventListener("change", () => imageSearch(imageInput.files[0]));
  imageLabel.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); imageInput.click(); }
  });
  let dragDepth = 0;
  document.addEventListener("dragenter", (ev) => { ev.preventDefault(); dragDepth += 1; dropzone.classList.add("active"); });
  document.addEventListener("dragleave", () => { dragDepth -= 1; if (dragDepth <= 0) dropzone.classList.remove("active"); });
  document.addEventListener("dragover", (ev) => ev.preventDefault());
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove("active");
    if (ev.dataTransfer && ev.dataTransfer.files.length) imageSearch(ev.dataTransfer.files[0]);
  });

  new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); },
    { rootMargin: "600px" }).observe(sentinel);

  // Arrow keys move between thumbnails (Tab still works; Enter opens).
  results.addEventListener("keydown", (ev) => {
    const links = Array.from(results.querySelectorAll("a.card"));
    const i = links.indexOf(document.activeElement);
    if (i < 0) return;
    const cols = Math.max(1, Math.round(results.clientWidth / links[0].parentElement.offsetWidth));
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols }[ev.key];
    if (!step) return;
    const j = Math.min(links.length - 1, Math.max(0, i + step));
    links[j].focus();
    ev.preventDefault();
  });

  // Restore a search from the URL (back button, "more like this" links, shared links).
  const params = new URLSearchParams(location.search);
  for (const [k, v] of params.entries()) {
    const el = form.elements.namedItem(k);
    if (el && k !== "query") el.value = v;
  }
  if (params.get("like")) start({ kind: "like", id: params.get("like"), filters: {} });
  else if (params.get("q")) { q.value = params.get("q"); start({ kind: "text", text: q.value, filters: filters() }); }
  else if (totalAssets > 0) start({ kind: "recent", filters: {} });
  // Every listener is attached: tests (and anything scripting the page) wait for this before dropping files.
  document.body.dataset.ready = "true";
})();
