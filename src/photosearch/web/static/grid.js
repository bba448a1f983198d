// The photo grid: cards (grouped under sticky day headers on the timeline), hover/focus captions,
// keyboard movement and selection (click with Ctrl/Shift, Space, Shift+Space, Ctrl+A). No build step.
(function () {
  "use strict";
  const results = document.getElementById("results");
  const bar = document.getElementById("selection-bar");
  const countEl = document.getElementById("selection-count");
  const DAY = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
  const SHORT = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });

  const grid = {
    items: [],          // every loaded item, in display order
    grouped: false,     // timeline: sections per day
    selected: new Set(),
    anchor: null,       // index of the last plain selection (for Shift ranges)
    onOpen: null,       // set by app.js: (index) => void
    onSelection: null,  // set by app.js: () => void
  };

  function dayKey(item) { return item.local_date_time ? item.local_date_time.slice(0, 10) : "unknown"; }
  function dayLabel(item) {
    return item.local_date_time ? DAY.format(new Date(item.local_date_time)) : "Date unknown";
  }
  function caption(item) {
    const parts = [item.original_file_name];
    if (item.local_date_time) parts.push(SHORT.format(new Date(item.local_date_time)));
    if (item.distance !== null && item.distance !== undefined) parts.push(`score ${(1 - item.distance).toFixed(3)}`);
    return parts.join(" · ");
  }
  grid.caption = caption;

  function card(item, index) {
    const li = document.createElement("li");
    li.dataset.id = item.id;
    const a = document.createElement("a");
    a.href = `/photos/${item.id}`;
    a.className = "card";
    a.dataset.index = String(index);
    a.setAttribute("aria-label", item.original_file_name);
    a.title = caption(item);
    const img = document.createElement("img");
    img.src = item.thumbnail_url;
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = item.exif && item.exif.description ? item.exif.description : item.original_file_name;
    const cap = document.createElement("span");
    cap.className = "cap";
    cap.textContent = caption(item);
    cap.setAttribute("aria-hidden", "true");
    a.append(img, cap);
    if (item.is_favorite) {
      const star = document.createElement("span");
      star.className = "fav-mark";
      star.textContent = "★";
      star.setAttribute("aria-hidden", "true");
      a.appendChild(star);
    }
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "pick";
    pick.tabIndex = -1;
    pick.setAttribute("aria-label", `Select ${item.original_file_name}`);
    pick.setAttribute("aria-pressed", String(grid.selected.has(item.id)));
    pick.textContent = "✓";
    li.append(a, pick);
    if (grid.selected.has(item.id)) li.classList.add("selected");
    return li;
  }

  function lastList(item) {
    if (!grid.grouped) {
      let ul = results.querySelector("ul.grid:not(.skeleton)");
      if (!ul) { ul = document.createElement("ul"); ul.className = "grid"; results.appendChild(ul); }
      return ul;
    }
    const key = dayKey(item);
    let section = results.lastElementChild;
    if (!section || section.dataset.day !== key) {
      section = document.createElement("section");
      section.className = "day";
      section.dataset.day = key;
      section.dataset.month = key.slice(0, 7);
      const h = document.createElement("h2");
      h.className = "day-head";
      h.textContent = dayLabel(item);
      const ul = document.createElement("ul");
      ul.className = "grid";
      ul.setAttribute("aria-label", h.textContent);
      section.append(h, ul);
      results.appendChild(section);
    }
    return section.querySelector("ul");
  }

  grid.reset = function (grouped) {
    grid.items = [];
    grid.grouped = grouped;
    grid.clearSelection();
    results.replaceChildren();
  };
  grid.skeleton = function () {
    const ul = document.createElement("ul");
    ul.className = "grid skeleton";
    ul.setAttribute("aria-hidden", "true");
    for (let i = 0; i < 24; i++) ul.appendChild(document.createElement("li"));
    results.replaceChildren(ul);
  };
  grid.append = function (items) {
    const sk = results.querySelector("ul.skeleton");
    if (sk) sk.remove();
    for (const item of items) {
      const i = grid.items.length;
      grid.items.push(item);
      lastList(item).appendChild(card(item, i));
    }
  };
  // Items that belong above the current first one (scrolling back up after a scrubber jump).
  grid.prepend = function (items) {
    const all = items.concat(grid.items);
    const selected = grid.selected;
    const y = document.documentElement.scrollHeight - window.scrollY;
    grid.items = [];
    results.replaceChildren();
    grid.selected = selected;
    grid.append(all);
    window.scrollTo(0, document.documentElement.scrollHeight - y);
  };
  grid.remove = function (ids) {
    const gone = new Set(ids);
    const keep = grid.items.filter((it) => !gone.has(it.id));
    grid.items = [];
    results.replaceChildren();
    gone.forEach((id) => grid.selected.delete(id));
    grid.append(keep);
    grid.refreshSelection();
  };
  grid.update = function (item) {
    const i = grid.items.findIndex((it) => it.id === item.id);
    if (i < 0) return;
    grid.items[i] = item;
    const li = results.querySelector(`li[data-id="${item.id}"]`);
    if (li) li.replaceWith(card(item, i));
  };
  grid.cardAt = function (i) { return results.querySelector(`a.card[data-index="${i}"]`); };
  grid.cards = function () { return Array.from(results.querySelectorAll("a.card")); };

  // ---- selection -------------------------------------------------------------------------------
  grid.refreshSelection = function () {
    results.querySelectorAll("li[data-id]").forEach((li) => {
      const on = grid.selected.has(li.dataset.id);
      li.classList.toggle("selected", on);
      const pick = li.querySelector(".pick");
      if (pick) pick.setAttribute("aria-pressed", String(on));
    });
    const n = grid.selected.size;
    bar.hidden = n === 0;
    countEl.textContent = n ? `${n} selected` : "";
    document.body.classList.toggle("selecting", n > 0);
    if (grid.onSelection) grid.onSelection();
  };
  grid.clearSelection = function () { grid.selected.clear(); grid.anchor = null; grid.refreshSelection(); };
  grid.selectAll = function () { grid.items.forEach((it) => grid.selected.add(it.id)); grid.refreshSelection(); };
  function toggle(i) {
    const id = grid.items[i].id;
    if (grid.selected.has(id)) grid.selected.delete(id); else grid.selected.add(id);
    grid.anchor = i;
  }
  function range(i) {
    const from = grid.anchor === null ? i : grid.anchor;
    const [lo, hi] = from < i ? [from, i] : [i, from];
    for (let k = lo; k <= hi; k++) grid.selected.add(grid.items[k].id);
  }
  grid.selectedIds = function () { return grid.items.filter((it) => grid.selected.has(it.id)).map((it) => it.id); };

  results.addEventListener("click", (ev) => {
    const pick = ev.target.closest(".pick");
    const a = ev.target.closest("a.card");
    const el = pick ? pick.parentElement.querySelector("a.card") : a;
    if (!el) return;
    const i = Number(el.dataset.index);
    if (ev.shiftKey) { ev.preventDefault(); range(i); grid.refreshSelection(); return; }
    if (pick || ev.ctrlKey || ev.metaKey || grid.selected.size > 0) {
      ev.preventDefault(); toggle(i); grid.refreshSelection(); return;
    }
    if (ev.button === 0 && grid.onOpen) { ev.preventDefault(); grid.onOpen(i); }
  });

  results.addEventListener("keydown", (ev) => {
    const a = ev.target.closest("a.card");
    if (!a) return;
    const i = Number(a.dataset.index);
    if (ev.key === " ") {
      ev.preventDefault();
      if (ev.shiftKey) range(i); else toggle(i);
      grid.refreshSelection();
      return;
    }
    if (ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey && grid.onOpen) { ev.preventDefault(); grid.onOpen(i); return; }
    let j = null;
    if (ev.key === "ArrowRight") j = i + 1;
    else if (ev.key === "ArrowLeft") j = i - 1;
    else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") j = vertical(a, ev.key === "ArrowDown" ? 1 : -1);
    if (j === null) return;
    ev.preventDefault();
    j = Math.min(grid.items.length - 1, Math.max(0, j));
    const target = grid.cardAt(j);
    if (target) { target.focus(); if (ev.shiftKey) { range(j); grid.refreshSelection(); } }
  });

  // The card straight above/below: the nearest by horizontal centre in the next row, across day sections.
  function vertical(a, dir) {
    const r = a.getBoundingClientRect();
    const cx = r.left + r.width / 2;
    let best = null;
    let bestScore = Infinity;
    for (const c of grid.cards()) {
      const b = c.getBoundingClientRect();
      const dy = (b.top - r.top) * dir;
      if (dy < r.height / 2) continue;
      const score = dy * 10 + Math.abs(b.left + b.width / 2 - cx);
      if (score < bestScore) { bestScore = score; best = c; }
    }
    return best ? Number(best.dataset.index) : null;
  }

  window.PS = Object.assign(window.PS || {}, { grid: grid });
})();
