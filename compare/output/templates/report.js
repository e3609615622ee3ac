(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var items = document.querySelectorAll("[data-item]");
  var sections = document.querySelectorAll("section[data-status]");
  var filters = document.querySelectorAll("button[data-filter]");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var noMatch = document.getElementById("no-match");
  var texts = data.items.map(function (item) {
    return (item.name + "\n" + item.previous).toLowerCase();
  });
  var active = {};

  function showAll() {
    data.statuses.forEach(function (status) { active[status] = true; });
  }

  function readState() {
    var params = new URLSearchParams(location.hash.slice(1));
    var wanted = params.get("status");
    showAll();
    if (wanted) {
      var list = wanted.split(",");
      data.statuses.forEach(function (status) { active[status] = list.indexOf(status) !== -1; });
    }
    search.value = params.get("q") || "";
  }

  function saveState(typed) {
    var params = new URLSearchParams();
    var on = data.statuses.filter(function (status) { return active[status]; });
    if (on.length !== data.statuses.length) { params.set("status", on.join(",")); }
    if (typed) { params.set("q", typed); }
    var hash = params.toString();
    var current = new URLSearchParams(location.hash.slice(1));
    var filtered = current.has("status") || current.has("q");
    // A fragment that is no filter (a link to a part of the page) is left alone.
    if (hash === location.hash.slice(1) || (!hash && !filtered)) { return; }
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (error) {
      // Some browsers refuse history updates on file: pages; the filter works regardless.
    }
  }

  function apply() {
    var typed = search.value.trim();
    var query = typed.toLowerCase();
    var perStatus = {};
    var visible = 0;
    for (var i = 0; i < items.length; i++) {
      var index = Number(items[i].getAttribute("data-item"));
      var status = data.items[index].status;
      var show = active[status] === true && (query === "" || texts[index].indexOf(query) !== -1);
      items[i].hidden = !show;
      if (show) {
        visible += 1;
        perStatus[status] = (perStatus[status] || 0) + 1;
      }
    }
    sections.forEach(function (section) {
      var count = perStatus[section.getAttribute("data-status")] || 0;
      section.hidden = count === 0;
      var details = section.querySelector("details");
      if (details && query && count) { details.open = true; }
    });
    filters.forEach(function (button) {
      var status = button.getAttribute("data-filter");
      button.setAttribute("aria-pressed", String(active[status] === true));
    });
    var total = data.items.length;
    shown.textContent = visible === total
      ? "Showing all " + total + " images"
      : "Showing " + visible + " of " + total + " images";
    noMatch.hidden = visible !== 0;
    saveState(typed);
  }

  function toggle(status) {
    var on = data.statuses.filter(function (s) { return active[s]; });
    if (on.length === data.statuses.length) {
      data.statuses.forEach(function (s) { active[s] = s === status; });
    } else {
      active[status] = !active[status];
      if (!data.statuses.some(function (s) { return active[s]; })) { showAll(); }
    }
    apply();
  }

  function setMode(viewer, mode) {
    viewer.setAttribute("data-mode", mode);
    viewer.querySelectorAll("button[data-mode]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-mode") === mode));
    });
    var slider = viewer.querySelector("input.slider");
    if (slider) { slider.hidden = mode !== "slider"; }
  }

  var pending = 0;
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target === search) {
      clearTimeout(pending);
      pending = setTimeout(apply, 120);
    } else if (target.classList.contains("slider")) {
      target.closest(".viewer").style.setProperty("--pos", target.value + "%");
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || button.disabled) { return; }
    if (button.hasAttribute("data-mode")) {
      setMode(button.closest(".viewer"), button.getAttribute("data-mode"));
    } else if (button.hasAttribute("data-filter")) {
      toggle(button.getAttribute("data-filter"));
    } else if (button.id === "show-all") {
      showAll();
      search.value = "";
      apply();
    }
  });
  // A link to an image's entry (the approval banner's) shows it, filtered out or collapsed.
  function reveal() {
    var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    if (!target) { return; }
    var details = target.closest("details");
    if (details) { details.open = true; }
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", function () { readState(); apply(); reveal(); });

  document.querySelectorAll(".viewer").forEach(function (viewer) {
    viewer.querySelector(".modes").hidden = false;
    setMode(viewer, viewer.getAttribute("data-initial"));
  });
  document.getElementById("toolbar").hidden = false;
  readState();
  apply();
  document.body.setAttribute("data-ready", "true");
})();
