// Shared by every page: the JSON API helper, the theme toggle and the keyboard-shortcut help.
(function () {
  "use strict";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function api(method, url, body) {
    const opts = { method: method, headers: { "x-csrf-token": window.PS.csrf } };
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) {
      opts.headers["content-type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401 && !url.startsWith("/api/auth/")) {
      window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    if (!resp.ok) {
      const err = new Error((data && data.message) || `request failed (${resp.status})`);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  // Theme: system -> light -> dark -> system. The choice lives in localStorage; theme.js applies it early.
  const THEMES = ["system", "light", "dark"];
  const toggle = document.getElementById("theme-toggle");
  function currentTheme() { return document.documentElement.dataset.theme || "system"; }
  function showTheme() { if (toggle) toggle.setAttribute("aria-label", `Colour theme: ${currentTheme()}`); }
  if (toggle) {
    showTheme();
    toggle.addEventListener("click", () => {
      const next = THEMES[(THEMES.indexOf(currentTheme()) + 1) % THEMES.length];
      if (next === "system") delete document.documentElement.dataset.theme;
      else document.documentElement.dataset.theme = next;
      try { localStorage.setItem("photosearch-theme", next); } catch (e) { /* private mode */ }
      showTheme();
    });
  }

  const help = document.getElementById("help");
  const helpToggle = document.getElementById("help-toggle");
  function typing(ev) {
    const t = ev.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  if (help && helpToggle) {
    helpToggle.addEventListener("click", () => help.showModal());
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "?" && !typing(ev) && !help.open) { ev.preventDefault(); help.showModal(); }
    });
  }

  window.PS = Object.assign(window.PS || {}, { csrf: csrf, api: api, typing: typing });
})();
