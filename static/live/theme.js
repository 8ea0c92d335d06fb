// Light, dark or system colour theme, remembered per browser. Runs in <head> so the page never flashes.
(function () {
  var KEY = "blobforge-theme";
  var stored = null;
  try { stored = localStorage.getItem(KEY); } catch (e) { /* private mode */ }
  document.documentElement.dataset.theme = stored || "system";
  document.addEventListener("DOMContentLoaded", function () {
    var picker = document.getElementById("theme");
    if (!picker) return;
    picker.value = document.documentElement.dataset.theme;
    picker.addEventListener("change", function () {
      document.documentElement.dataset.theme = picker.value;
      try { localStorage.setItem(KEY, picker.value); } catch (e) { /* private mode */ }
    });
  });
})();
