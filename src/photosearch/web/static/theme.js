// Runs before the first paint: apply the chosen colour theme (light, dark, or the system's) without a flash.
(function () {
  "use strict";
  try {
    const t = localStorage.getItem("photosearch-theme");
    if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
  } catch (e) { /* storage blocked: follow the system */ }
})();
