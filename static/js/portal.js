// Small progressive enhancements; every page also works without them.
(function () {
  "use strict";

  // Confirm destructive actions: <button data-confirm="..."> or, naming how many are selected,
  // <button data-confirm-count="Restart {n} phone(s)?">.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-confirm], [data-confirm-count]");
    if (!button) return;
    let question = button.dataset.confirm;
    if (button.dataset.confirmCount) {
      const chosen = document.querySelectorAll("input[name=ids]:checked").length;
      question = button.dataset.confirmCount.replace("{n}", chosen);
    }
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Bulk selection: "select all" and enabling the buttons that need a selection.
  function refreshSelection() {
    const chosen = document.querySelectorAll("input[name=ids]:checked").length;
    document.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = chosen === 0;
      const base = button.dataset.label || button.textContent.trim();
      button.dataset.label = base;
      button.textContent = chosen ? base + " (" + chosen + ")" : base;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = event.target.checked; });
    }
    if (event.target.matches("input[name=ids], [data-select-all]")) refreshSelection();
  });
  // The script is deferred, so the page is parsed: start with nothing selected, buttons off.
  refreshSelection();

  // After HTMX moves to a new tab, sort or page, keep the filter form and the export link in step with the URL.
  document.addEventListener("htmx:afterSettle", function () {
    const params = new URLSearchParams(window.location.search);
    const form = document.getElementById("filters");
    if (form) {
      ["state", "sort"].forEach(function (name) {
        const field = form.querySelector("input[type=hidden][name=" + name + "]");
        if (field) field.value = params.get(name) || "";
      });
      const exportLink = document.getElementById("export-link");
      if (exportLink) {
        params.delete("cursor"); params.delete("sort");
        exportLink.href = exportLink.href.split("?")[0] + (params.toString() ? "?" + params.toString() : "");
      }
    }
    refreshSelection();
  });

  // The side pane: open when HTMX fills it, close on its close buttons.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "pane") event.detail.target.classList.add("open");
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-pane]")) {
      const pane = document.getElementById("pane");
      if (pane && pane.contains(event.target)) {
        event.preventDefault();
        pane.classList.remove("open");
      }
    }
  });
})();
