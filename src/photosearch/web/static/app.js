// The photos page: what is shown lives in the URL (query, filters, "like", trash view, open photo), so a
// reload, a shared link and the Back button all work. Timeline pages use keyset cursors; the scrubber
// jumps to a month with one request. Plain JS, no build step.
(function () {
  "use strict";
  const { api, grid } = window.PS;
  const form = document.getElementById("search-form");
  const q = document.getElementById("q");
  const statusEl = document.getElementById("status");
  const sentinel = document.getElementById("sentinel");
  const chipsEl = document.getElementById("chips");
  const countBadge = document.getElementById("filter-count");
  const relevant = document.getElementById("relevant");
  const understoodEl = document.getElementById("understood");
  const queryInfo = document.getElementById("query-info");
  const queryThumb = document.getElementById("query-thumb");
  const queryLabel = document.getElementById("query-label");
  const scrubber = document.getElementById("scrubber");
  const loadNewer = document.getElementById("load-newer");
  const view = document.getElementById("results").dataset.view;
  const params0 = new URLSearchParams(location.search);
  const pageSize = Math.min(200, Math.max(1, Number(params0.get("size")) || 60));
  const FILTERS = Array.from(form.querySelectorAll(".filters [name]"));
  const TEXT_DEBOUNCE_MS = 400;

  let current = null;      // {kind: "timeline"|"text"|"image"|"like"|"trash", ...}
  let next = null;         // {page} or {cursor}; null = nothing more
  let loading = false;
  let generation = 0;
  let newerCursor = null;  // after a scrubber jump: where the newer photos start
  let buckets = null;      // months of the timeline, fetched once the first page is on screen

  function setStatus(text) { statusEl.textContent = text; }

  // ---- the URL is the state --------------------------------------------------------------------
  function urlParams() {
    const p = new URLSearchParams();
    if (view === "trash") p.set("view", "trash");
    if (current && current.kind === "text") p.set("q", current.text);
    if (current && current.kind === "like") p.set("like", current.id);
    for (const el of FILTERS) if (el.value !== "") p.set(el.name, el.value);
    if (!relevant.checked) p.set("relevant_only", "false");
    if (pageSize !== 60) p.set("size", String(pageSize));
    return p;
  }
  // "More like this" from the viewer: this view's filters and page settings, searching by the photo instead
  window.PS.likeUrl = function (id) {
    const p = urlParams();
    for (const k of ["q", "view"]) p.delete(k);
    p.set("like", id);
    return "/?" + p.toString();
  };
  function saveUrl(push) {
    const p = urlParams();
    const photo = new URLSearchParams(location.search).get("photo");
    if (photo && !push) p.set("photo", photo);
    const url = "/" + (p.toString() ? "?" + p.toString() : "");
    if (url === location.pathname + location.search) return;
    if (push) history.pushState({ search: true }, "", url); else history.replaceState(history.state, "", url);
  }
  function readUrl() {
    const p = new URLSearchParams(location.search);
    for (const el of FILTERS) el.value = p.get(el.name) || "";
    relevant.checked = p.get("relevant_only") !== "false";
    q.value = p.get("q") || "";
    if (view === "trash") return { kind: "trash" };
    if (p.get("like")) return { kind: "like", id: p.get("like") };
    if (p.get("q")) return { kind: "text", text: p.get("q") };
    return { kind: "timeline" };
  }

  // ---- filters ---------------------------------------------------------------------------------
  const LABELS = {};
  for (const el of FILTERS) LABELS[el.name] = form.querySelector(`label[for="${el.id}"]`).textContent;
  function shownValue(el) {
    if (el.tagName === "SELECT") return el.options[el.selectedIndex].textContent;
    return el.value;
  }
  function nearFilter(place, radius) {
    const km = Number(radius) || 25;
    const m = place.match(/^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/);
    if (m) return [Number(m[1]), Number(m[2]), km];
    const known = places[place.trim().toLowerCase()];
    return known ? [known[0], known[1], km] : undefined;
  }
  // "south, west, north, east" in degrees, as the API's bbox; anything else is left out (and marked invalid).
  function bboxFilter(text) {
    const parts = text.split(",").map((x) => x.trim());
    if (parts.length !== 4 || parts.some((x) => !/^-?\d+(\.\d+)?$/.test(x))) return undefined;
    const [s, w, n, e] = parts.map(Number);
    const ok = -90 <= s && s <= n && n <= 90 && Math.abs(w) <= 180 && Math.abs(e) <= 180;
    return ok ? [s, w, n, e] : undefined;
  }
  function filters() {
    const f = {};
    const v = {};
    for (const el of FILTERS) if (el.value !== "") v[el.name] = el.value;
    for (const [k, val] of Object.entries(v)) {
      if (/_(after|before)$/.test(k)) f[k] = val + "T00:00:00";
      else if (k === "is_favorite" || k === "has_gps") f[k] = val === "true";
      else if (k === "is_archived") f[k] = val === "any" ? null : val === "true";
      else if (k === "rating_min" || k === "rating" || k === "max_distance") f[k] = Number(val);
      else if (k === "visibility") f[k] = val === "all" ? ["timeline", "hidden", "locked"] : [val];
      else if (k === "bbox") f.bbox = bboxFilter(val);
      else if (k === "library_id") f.library_ids = [val];
      else if (k === "near") f.near = nearFilter(val, v.radius);
      else if (k === "radius") continue;
      else if (k === "understand") f[k] = val !== "false";
      else if (k === "add_text" || k === "subtract_text") f[k] = [val];
      else f[k] = val;
    }
    f.relevant_only = relevant.checked;  // on unless unticked: only what stands out
    if (f.near === undefined) delete f.near;
    if (f.bbox === undefined) delete f.bbox;
    const box = form.elements.namedItem("bbox");
    if (v.bbox !== undefined && f.bbox === undefined) box.setAttribute("aria-invalid", "true");
    else box.removeAttribute("aria-invalid");
    return f;
  }
  function activeFilters() { return FILTERS.filter((el) => el.value !== "" && el.name !== "radius"); }
  function renderChips() {
    const active = activeFilters();
    chipsEl.replaceChildren();
    for (const el of active) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = `${LABELS[el.name]}: ${shownValue(el)} ✕`;
      b.setAttribute("aria-label", `Remove filter ${LABELS[el.name]}: ${shownValue(el)}`);
      b.addEventListener("click", () => {
        el.value = "";
        if (el.name === "near") form.elements.namedItem("radius").value = "";
        applyFilters(true);
        (chipsEl.querySelector(".chip") || q).focus();
      });
      chipsEl.appendChild(b);
    }
    chipsEl.hidden = active.length === 0;
    countBadge.hidden = active.length === 0;
    countBadge.textContent = String(active.length);
    countBadge.setAttribute("aria-label", `${active.length} active`);
  }
  function filterable() { return current && (current.kind === "text" || current.kind === "image" || current.kind === "like"); }
  function applyFilters(push) {
    renderChips();
    if (filterable()) { current.filters = filters(); saveUrl(push); start(current); }
    else {
      saveUrl(push);
      if (activeFilters().length && current && current.kind === "timeline") {
        setStatus("Filters apply to searches: type what you are looking for, or open a photo's “More like this”.");
      }
    }
  }
  let debounce = null;
  for (const el of FILTERS) {
    if (el.tagName === "SELECT" || el.type === "date") el.addEventListener("change", () => applyFilters(true));
    else {
      el.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => applyFilters(false), TEXT_DEBOUNCE_MS); });
      el.addEventListener("change", () => { clearTimeout(debounce); applyFilters(true); });
    }
  }
  relevant.addEventListener("change", () => applyFilters(true));
  document.getElementById("clear-filters").addEventListener("click", () => {
    FILTERS.forEach((el) => { el.value = ""; });
    applyFilters(true);
  });

  // ---- suggestions for the filter panel, fetched the first time it opens ---------------------------
  let places = {};
  let suggested = null;
  const LISTS = { make: "makes", model: "models", lens_model: "lenses", country: "countries", state: "states", city: "cities" };
  function fill(id, values) {
    document.getElementById(id).replaceChildren(...values.map((v) => { const o = document.createElement("option"); o.value = v; return o; }));
  }
  function loadSuggestions() {
    if (!suggested) {
      suggested = api("GET", "/api/search/suggestions").then((d) => {
        for (const [k, id] of Object.entries(LISTS)) fill(id, d[k] || []);
        fill("places", d.places.map((p) => p.name));
        places = {};
        for (const p of d.places) places[p.name.toLowerCase()] = [p.lat, p.lon];
      }).catch(() => { suggested = null; });
    }
    return suggested;
  }
  document.getElementById("filters").addEventListener("toggle", () => loadSuggestions());

  // ---- recent searches (this browser only) -----------------------------------------------------
  const RECENT_KEY = "photosearch-recent";
  function recent() { try { return JSON.parse(localStorage.getItem(RECENT_KEY)) || []; } catch (e) { return []; } }
  function showRecent() {
    const list = document.getElementById("recent-searches");
    list.replaceChildren(...recent().map((t) => { const o = document.createElement("option"); o.value = t; return o; }));
  }
  function remember(text) {
    const list = [text].concat(recent().filter((t) => t !== text)).slice(0, 10);
    try { localStorage.setItem(RECENT_KEY, JSON.stringify(list)); } catch (e) { /* private mode */ }
    showRecent();
  }

  // ---- fetching --------------------------------------------------------------------------------
  async function fetchPage(search, nx) {
    if (search.kind === "text") {
      return api("POST", "/api/search/smart", Object.assign({ query: search.text, page: nx.page, size: pageSize }, search.filters));
    }
    if (search.kind === "image") {
      const body = new FormData();
      body.append("file", search.file);
      body.append("filters", JSON.stringify(search.filters));
      body.append("page", String(nx.page));
      body.append("size", String(pageSize));
      return api("POST", "/api/search/image", body);
    }
    if (search.kind === "like") {
      return api("POST", "/api/search/similar", Object.assign(
        { asset_id: search.id, page: nx.page, size: pageSize }, search.filters));
    }
    if (search.kind === "trash") return api("GET", `/api/trash?page=${nx.page}&size=${pageSize}`);
    const qs = new URLSearchParams({ size: String(pageSize) });
    if (nx.cursor) qs.set("cursor", nx.cursor);
    if (nx.before) qs.set("before", nx.before);
    return api("GET", "/api/assets?" + qs.toString());
  }

  function explainEmpty(data, search) {
    if (search.kind === "trash") return "The trash is empty.";
    if (!data.total_indexed && Number(statusEl.dataset.assets) === 0) {
      return "No photos are indexed yet. Upload photos or add a folder, then search again.";
    }
    if (!data.total_indexed) return "Your photos are still being indexed: none has an embedding yet. Try again in a moment.";
    const n = activeFilters().length;
    let text = n
      ? `No photo among ${data.total_indexed} indexed matches these ${n} filter${n === 1 ? "" : "s"}. Remove a filter to see more.`
      : `No matches among ${data.total_indexed} indexed photos.`;
    if (form.elements.namedItem("ocr_text").value) text += " Text in photos is found only in photos indexed with OCR.";
    if (relevant.checked) text += " Untick “Relevant only” to see every result.";
    return text;
  }
  function describe(data, search) {
    const shown = grid.items.length;
    const more = next !== null;
    let text;
    if (search.kind === "timeline") text = `${shown}${more ? "+" : ""} photos on your timeline, newest first.`;
    else if (search.kind === "trash") text = `${shown}${more ? "+" : ""} photos in the trash.`;
    else text = `${shown} photo${shown === 1 ? "" : "s"} shown${more ? "; scroll for more" : ""}.`;
    if (data.test_model || data.model_is_test) text += " The test model is active: rankings are random.";
    return text;
  }

  async function loadMore() {
    if (loading || current === null || next === null) return;
    loading = true;
    const gen = generation;
    const search = current;
    const nx = next;
    if (!grid.items.length && search.kind !== "timeline" && search.kind !== "trash") setStatus("Searching…");
    try {
      const data = await fetchPage(search, nx);
      if (gen !== generation) return;
      grid.append(data.items);
      if (nx.page === 1) showUnderstood(data.understood);
      if (data.next_cursor && search.kind === "timeline") next = { cursor: data.next_cursor };
      else next = data.next_page ? { page: data.next_page } : null;
      const text = grid.items.length ? describe(data, search) : explainEmpty(data, search);
      setStatus(search.notice ? `${search.notice} ${text}` : text);  // what led here stays said
      document.body.dataset.loaded = String(grid.items.length);
      if (search.kind === "timeline" && buckets === null) loadBuckets();
      else if (search.kind === "timeline") markMonth();
      if (window.PS.viewer) window.PS.viewer.itemsChanged();
    } catch (err) {
      if (gen === generation) { setStatus("Could not load photos: " + err.message); next = null; }
    } finally {
      if (gen === generation) loading = false;
    }
    if (gen === generation && next !== null && nearBottom()) loadMore();
  }
  function nearBottom() { return sentinel.getBoundingClientRect().top < window.innerHeight + 800; }
  window.PS.loadMore = function () { return loadMore(); };
  window.PS.hasMore = function () { return next !== null; };

  // What the search box made of the query: "in Kyoto · text KIRIN · file name IMG_2682".
  const SAID = { place: "in", camera: "camera", text: "text", description: "description", "file name": "file name",
    folder: "folder", not: "not", broad: "common word" };
  function showUnderstood(parts) {
    const said = (parts || []).map((u) => (u.kind === "or" ? u.text : `${SAID[u.kind] || u.kind} ${u.value || u.text}`));
    understoodEl.textContent = said.length ? "Understood: " + said.join(" · ") : "";
    understoodEl.hidden = !said.length;
  }
  function start(search, first) {
    showUnderstood([]);
    generation += 1;
    loading = false;
    current = search;
    next = first || { page: 1 };
    newerCursor = null;
    loadNewer.hidden = true;
    grid.reset(search.kind === "timeline");
    if (grid.items.length === 0 && Number(statusEl.dataset.assets) > 0) grid.skeleton();
    queryInfo.hidden = !(search.kind === "image" || search.kind === "like");
    queryThumb.hidden = queryInfo.hidden;
    scrubber.hidden = search.kind !== "timeline" || !buckets || !buckets.length;
    if (search.kind === "image") {
      queryThumb.src = URL.createObjectURL(search.file);
      queryThumb.alt = `Your query image ${search.file.name}`;
      queryLabel.textContent = `Photos like ${search.file.name}`;
    } else if (search.kind === "like") {
      queryThumb.src = `/api/assets/${encodeURIComponent(search.id)}/thumbnail?size=thumb`;
      queryThumb.alt = "The photo this search is based on";
      queryLabel.textContent = "Based on this photo: the most similar first";
      api("GET", `/api/assets/${encodeURIComponent(search.id)}`).then((a) => {
        // a late answer must not relabel a search started since (an image dropped meanwhile, say)
        if (current === search) queryLabel.textContent = `Based on ${a.original_file_name}: the most similar first`;
      }).catch(() => {});
    }
    loadMore();
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = q.value.trim();
    if (!text) { q.focus(); setStatus("Type what you are looking for, or search by image."); return; }
    remember(text);
    const search = { kind: "text", text: text, filters: filters() };
    current = search;
    saveUrl(true);
    start(search);
  });

  // ---- search by image (picker or drop) --------------------------------------------------------
  const imageInput = document.getElementById("image-input");
  function imageSearch(file) {
    if (!file) return;
    if (!file.type.startsWith("image/") && file.type !== "") { setStatus("That file is not an image."); return; }
    start({ kind: "image", file: file, filters: filters() });
  }
  imageInput.addEventListener("change", () => imageSearch(imageInput.files[0]));
  document.querySelectorAll("label.button[role=button]").forEach((label) => label.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); document.getElementById(label.htmlFor).click(); }
  }));
  window.PS.imageSearch = imageSearch;

  // ---- timeline scrubber -----------------------------------------------------------------------
  const MONTH = new Intl.DateTimeFormat(undefined, { month: "short", timeZone: "UTC" });
  const MONTH_LONG = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
  // The scrubber's months come after the grid's first page: the first paint waits for one request only.
  async function loadBuckets() {
    buckets = [];
    try { buckets = (await api("GET", "/api/timeline/buckets")).buckets; } catch (err) { return; }
    if (buckets.length) { buildScrubber(); scrubber.hidden = !current || current.kind !== "timeline"; markMonth(); }
  }
  function buildScrubber() {
    const years = new Map();
    for (const b of buckets) {
      const y = b.month.slice(0, 4);
      if (!years.has(y)) years.set(y, []);
      years.get(y).push(b);
    }
    const ol = document.createElement("ol");
    for (const [y, months] of years) {
      const li = document.createElement("li");
      const yb = document.createElement("button");
      yb.type = "button";
      yb.className = "year";
      yb.textContent = y;
      const total = months.reduce((s, b) => s + b.count, 0);
      yb.setAttribute("aria-label", `${y}, ${total} photos`);
      yb.addEventListener("click", () => jump(months[0].month));
      const ml = document.createElement("ol");
      for (const b of months) {
        const mli = document.createElement("li");
        const mb = document.createElement("button");
        mb.type = "button";
        mb.className = "month";
        mb.dataset.month = b.month;
        const d = new Date(b.month + "-01T00:00:00Z");
        mb.textContent = MONTH.format(d);
        mb.setAttribute("aria-label", `${MONTH_LONG.format(d)}, ${b.count} photos`);
        mb.title = `${MONTH_LONG.format(d)}: ${b.count}`;
        mb.addEventListener("click", () => jump(b.month));
        mli.appendChild(mb);
        ml.appendChild(mli);
      }
      li.append(yb, ml);
      ol.appendChild(li);
    }
    scrubber.replaceChildren(ol);
  }
  // The month on screen is marked in the scrubber while scrolling.
  let marking = false;
  function markMonth() {
    marking = false;
    if (scrubber.hidden) return;
    const section = Array.from(document.querySelectorAll("#results section.day"))
      .find((el) => el.getBoundingClientRect().bottom > 0);
    const month = section ? section.dataset.month : null;
    scrubber.querySelectorAll("button.month").forEach((b) => {
      const on = b.dataset.month === month;
      b.classList.toggle("current", on);
      if (on) b.setAttribute("aria-current", "true"); else b.removeAttribute("aria-current");
    });
  }
  window.addEventListener("scroll", () => { if (!marking) { marking = true; requestAnimationFrame(markMonth); } }, { passive: true });
  function monthEnd(month) {
    const [y, m] = month.split("-").map(Number);
    return new Date(Date.UTC(y, m, 1)).toISOString().replace(".000Z", "Z");
  }
  function jump(month) {
    if (!current || current.kind !== "timeline" || !buckets) return;
    const first = buckets.length && buckets[0].month === month;
    start({ kind: "timeline" }, first ? { page: 1 } : { before: monthEnd(month) });
    window.scrollTo(0, 0);
    if (!first) loadNewerReady();
  }
  function loadNewerReady() {
    const gen = generation;
    const check = () => {
      if (gen !== generation) return;
      if (!grid.items.length) { if (loading) setTimeout(check, 50); return; }
      const top = grid.items[0];
      newerCursor = `${top.local_date_time}|${top.id}`;
      loadNewer.hidden = false;
    };
    setTimeout(check, 0);
  }
  loadNewer.addEventListener("click", async () => {
    if (!newerCursor) return;
    loadNewer.disabled = true;
    try {
      const data = await api("GET", `/api/assets?size=${pageSize}&newer_than=${encodeURIComponent(newerCursor)}`);
      grid.prepend(data.items);
      if (data.has_newer && grid.items.length) {
        newerCursor = `${grid.items[0].local_date_time}|${grid.items[0].id}`;
      } else { newerCursor = null; loadNewer.hidden = true; }
    } catch (err) { setStatus("Could not load newer photos: " + err.message); }
    loadNewer.disabled = false;
  });

  // ---- selection actions -----------------------------------------------------------------------
  const bulkButtons = document.querySelectorAll("[data-bulk]");
  bulkButtons.forEach((b) => b.addEventListener("click", async () => {
    const ids = grid.selectedIds();
    const action = b.dataset.bulk;
    try {
      const res = await api("POST", "/api/assets/bulk", { ids: ids, action: action });
      const removes = action === "trash" || action === "restore" || (action === "archive" && current.kind === "timeline");
      if (removes) grid.remove(ids);
      else {
        const fav = action === "favorite" ? true : action === "unfavorite" ? false : undefined;
        const arch = action === "archive" ? true : action === "unarchive" ? false : undefined;
        for (const it of grid.items.filter((x) => ids.includes(x.id))) {
          grid.update(Object.assign({}, it, fav === undefined ? {} : { is_favorite: fav }, arch === undefined ? {} : { is_archived: arch }));
        }
        grid.clearSelection();
      }
      setStatus(`${b.textContent.replace("★", "").trim()}: ${res.updated} photo${res.updated === 1 ? "" : "s"}.`);
    } catch (err) { setStatus("Could not update: " + err.message); }
  }));
  document.getElementById("select-all").addEventListener("click", () => grid.selectAll());
  document.getElementById("select-none").addEventListener("click", () => grid.clearSelection());
  document.getElementById("bulk-download").addEventListener("click", () => {
    const f = document.createElement("form");
    f.method = "post";
    f.action = "/api/assets/download";
    f.hidden = true;
    for (const [k, v] of [["ids", grid.selectedIds().join(",")], ["csrf_token", window.PS.csrf]]) {
      const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
    }
    document.body.appendChild(f);
    f.submit();
    f.remove();
  });
  const emptyTrash = document.getElementById("empty-trash");
  if (emptyTrash) emptyTrash.addEventListener("click", async () => {
    if (!window.confirm("Remove every photo in the trash for good?")) return;
    try {
      const res = await api("POST", "/api/trash/empty");
      const notice = `Removed ${res.deleted} photo${res.deleted === 1 ? "" : "s"} for good.`;
      start({ kind: "trash", notice });
      setStatus(notice);
    } catch (err) { setStatus("Could not empty the trash: " + err.message); }
  });

  document.addEventListener("keydown", (ev) => {
    if (window.PS.viewer && window.PS.viewer.isOpen()) return;
    if (ev.key === "/" && !window.PS.typing(ev)) { ev.preventDefault(); q.focus(); }
    else if (ev.key === "Escape" && grid.selected.size) grid.clearSelection();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "a" && !window.PS.typing(ev) && grid.items.length) {
      ev.preventDefault(); grid.selectAll();
    }
  });

  new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); },
    { rootMargin: "800px" }).observe(sentinel);

  // ---- start from the URL; Back/Forward re-read it ---------------------------------------------
  function fromUrl() {
    const s = readUrl();
    s.filters = filters();
    renderChips();
    if (s.kind === "timeline" && Number(statusEl.dataset.assets) === 0) { current = s; next = null; grid.reset(true); return; }
    if (!current || JSON.stringify(urlKey(current)) !== JSON.stringify(urlKey(s))) start(s);
  }
  function urlKey(s) { return [s.kind, s.text || "", s.id || "", JSON.stringify(s.filters || {})]; }
  window.addEventListener("popstate", () => {
    fromUrl();
    if (window.PS.viewer) window.PS.viewer.syncWithUrl();
  });
  grid.onOpen = (i) => window.PS.viewer.open(i);
  showRecent();
  const begin = () => {
    fromUrl();
    if (window.PS.viewer) window.PS.viewer.syncWithUrl();
    document.body.dataset.ready = "true";
  };
  // A "near" place in the URL needs the places' coordinates before the first search.
  if (params0.get("near")) loadSuggestions().then(begin); else begin();
})();
