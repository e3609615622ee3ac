(function () {
  "use strict";
  // Builds every card and row from the page's JSON, a few at a time, as the reviewer scrolls:
  // each section shows pages of PAGE entries (a card of a shared change is one entry) and
  // draws a page's entries BATCH at a time while its end is within AHEAD pixels of the window.
  // Text only ever goes in as text (textContent, text nodes, attributes), never as markup.
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var images = data.images;
  var pictures = data.pictures;
  var groups = data.groups;
  var PAGE = { card: 50, row: 500 };
  var BATCH = { card: 4, row: 50 };
  var AHEAD = 1500;
  var NAMES = 200;
  var REGIONS = 200;
  var FOCUS_BOX = [480, 400];
  var MAX_ZOOM = 8;
  var NATURAL_ZOOM = 2;
  var search = document.getElementById("search");
  var shownCount = document.getElementById("shown");
  var noMatch = document.getElementById("no-match");
  var filters = document.querySelectorAll("button[data-filter]");
  var texts = images.map(function (image) {
    return (image.name + "\n" + (image.previous || "")).toLowerCase();
  });
  var active = {};
  var uid = 0;
  var groupStates = new WeakMap();

  // The page has one <section> per key of data.sections, in that order.
  var elements = document.querySelectorAll("section[data-status]");
  var sections = data.sections.map(function (key, index) {
    var element = elements[index];
    var kind = element.getAttribute("data-kind");
    var more = element.querySelector("div.more");
    var section = {
      key: key, kind: kind, element: element, list: element.querySelector("ul"), more: more,
      button: more.querySelector("button.more"), pager: more.querySelector("nav.pager"),
      details: element.querySelector("details"), entries: [], shown: [], page: 0, drawn: 0
    };
    more.section = section;
    return section;
  });
  images.forEach(function (image, index) {
    var entries = sections[image.section].entries;
    if (image.group === undefined) {
      entries.push({ first: index, count: 1 });
    } else if (groups[image.group].first === index) {
      entries.push({ first: index, count: groups[image.group].count, group: image.group });
    }
  });

  // --- building blocks ---------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function number(value) { return value.toLocaleString("en"); }

  // Runs of a text: plain (0), escapes of invisible characters (1), and last, for a text cut
  // short, how many characters were left out (2).
  function appendRuns(parent, runs) {
    runs.forEach(function (run) {
      if (run[1] === 1) {
        var kbd = el("kbd", "ctl", run[0]);
        kbd.title = "invisible or control character";
        parent.appendChild(kbd);
      } else if (run[1] === 2) {
        parent.appendChild(el("span", "cut", run[0]));
      } else {
        parent.appendChild(document.createTextNode(run[0]));
      }
    });
  }

  function runsOf(image, previous) {
    if (previous) { return image.previousShown || [[image.previous, 0]]; }
    return image.shown || [[image.name, 0]];
  }

  function plain(image) {
    return runsOf(image, false).map(function (run) { return run[0]; }).join("");
  }

  function nameNode(image, previous) {
    var span = el("span", previous ? "name old" : "name");
    span.dir = "auto";
    appendRuns(span, runsOf(image, previous));
    return span;
  }

  function picture(position) {
    return position === null || position === undefined ? null : pictures[position];
  }

  function img(found, alt, width, height, className) {
    var node = el("img", className);
    node.src = found[5] || found[0];
    node.alt = alt;
    node.width = width;
    node.height = height;
    node.loading = "lazy";
    return node;
  }

  function missing(role) { return el("div", "missing", role + " picture not available"); }

  function facts(list) {
    var ul = el("ul", "facts");
    list.forEach(function (fact) {
      var kind = fact[0], text = fact[1], value = fact[2], li = el("li");
      if (kind === "reason") {
        li.appendChild(el("span", "reason", text));
      } else if (kind === "ratio") {
        li.append(el("strong", null, text), " of pixels changed (" + value + ")");
      } else if (kind === "allowed") {
        var link = el("a", null, "changed pixels allowed");
        link.href = "#tuning-diff-threshold";
        li.append(link, ": " + text);
      } else if (kind === "resized") {
        li.appendChild(el("span", "resized", "size changed: " + text));
      } else if (kind === "window") {
        li.append("most changed pixels in a " + value + " window: " + text);
      } else if (kind === "ignored") {
        li.appendChild(el("span", "ignored-note", "ignored regions " + text));
      } else if (kind === "hash") {
        var code = el("code", null, value.slice(0, 12));
        code.title = value;
        li.append(text + " ", code);
      } else {
        li.textContent = text;
      }
      ul.appendChild(li);
    });
    return ul;
  }

  function fact(image, kind) {
    var found = image.facts.filter(function (f) { return f[0] === kind; })[0];
    return found ? found[1] : "";
  }

  // Ignore regions, exclusive ends, clipped to an area of the canvas: the first REGIONS of
  // them (each box is an element: a manifest may list thousands) and how many more there are.
  function clipped(image, area) {
    var boxes = [], more = 0;
    (image.regions || []).forEach(function (r) {
      var x0 = Math.max(r[1], area[0]), y0 = Math.max(r[2], area[1]);
      var x1 = Math.min(r[3], area[2]), y1 = Math.min(r[4], area[3]);
      if (x0 >= x1 || y0 >= y1) { return; }
      if (boxes.length < REGIONS) { boxes.push([r[0], x0, y0, x1, y1]); } else { more++; }
    });
    return { boxes: boxes, more: more };
  }

  function box(title, left, top, width, height) {
    var span = el("span", "ignored");
    span.title = "ignored region " + title;
    span.style.left = left;
    span.style.top = top;
    span.style.width = width;
    span.style.height = height;
    return span;
  }

  // Draws the boxes over a picture; returns how many were left out.
  function pixelBoxes(parent, image, area, zoom) {
    var found = clipped(image, area);
    found.boxes.forEach(function (b) {
      parent.appendChild(box(b[0], (b[1] - area[0]) * zoom + "px", (b[2] - area[1]) * zoom + "px",
                             (b[3] - b[1]) * zoom + "px", (b[4] - b[2]) * zoom + "px"));
    });
    return found.more;
  }

  function percentBoxes(parent, image, size) {
    if (!size) { return 0; }
    var w = size[0], h = size[1], found = clipped(image, [0, 0, w, h]);
    found.boxes.forEach(function (b) {
      parent.appendChild(box(b[0], (100 * b[1] / w).toFixed(4) + "%", (100 * b[2] / h).toFixed(4) + "%",
                             (100 * (b[3] - b[1]) / w).toFixed(4) + "%", (100 * (b[4] - b[2]) / h).toFixed(4) + "%"));
    });
    return found.more;
  }

  function undrawn(more) {
    return el("p", "undrawn", "Only " + number(REGIONS) + " ignored regions are drawn on a picture: " +
      number(more) + " more are not.");
  }

  // The changed area: before and after crops at full resolution, zoomed by a whole factor.
  function focus(index) {
    var image = images[index], pics = image.pics || {};
    var crops = { before: picture(pics["crop-before"]), after: picture(pics["crop-after"]),
                  diff: picture(pics["crop-diff"]) };
    var shown = [crops.before, crops.after, crops.diff].filter(Boolean);
    if (!shown.length) { return null; }
    var width = Math.max.apply(null, shown.map(function (p) { return p[1]; }));
    var height = Math.max.apply(null, shown.map(function (p) { return p[2]; }));
    var zoom = Math.max(1, Math.min(MAX_ZOOM, Math.floor(FOCUS_BOX[0] / width), Math.floor(FOCUS_BOX[1] / height)));
    var origin = shown.filter(function (p) { return p[3] !== undefined && p[3] !== null; })[0];
    var area = origin ? [origin[3], origin[4], origin[3] + width, origin[4] + height] : null;
    var block = el("div", "focus");
    var heading = el("h4", null, "Changed area ");
    heading.appendChild(el("span", null, (image.where ? image.where + ", " : "") +
      (zoom === 1 ? "full resolution" : "zoomed " + zoom + "×")));
    var toggle = el("input", "highlight");
    toggle.type = "checkbox";
    toggle.id = "highlight-" + (++uid);
    toggle.checked = true;
    var label = el("label", "toggle", "Highlight changed pixels");
    label.htmlFor = toggle.id;
    var row = el("div", "crops");
    var links = [], more = 0;
    ["before", "after"].forEach(function (role) {
      var found = crops[role], figure = el("figure", "crop " + role), frame = el("div", "frame");
      if (found) {
        frame.appendChild(img(found, plain(image) + ": " + role + ", changed area", found[1] * zoom, found[2] * zoom));
        if (crops.diff) {
          frame.appendChild(img(crops.diff, "", crops.diff[1] * zoom, crops.diff[2] * zoom, "overlay"));
        }
        if (area) { more = Math.max(more, pixelBoxes(frame, image, area, zoom)); }
        links.push([role + " crop", found[0]]);
      } else {
        frame.appendChild(missing(role));
      }
      figure.append(frame, el("figcaption", null, role));
      row.appendChild(figure);
    });
    if (image.mask) { links.push(["diff mask (whole image)", image.mask]); }
    block.append(heading, toggle, " ", label, row);
    if (more) { block.appendChild(undrawn(more)); }
    if (links.length) {
      var full = el("p", "full", "Full size:");
      links.forEach(function (link, i) {
        var a = el("a", null, link[0]);
        a.href = link[1];
        full.append(" ", a, i < links.length - 1 ? "," : "");
      });
      block.appendChild(full);
    }
    return block;
  }

  // The whole images: slider, side by side or diff; one picture for added, removed, renamed.
  function viewer(index) {
    var image = images[index], pics = image.pics || {};
    var roles = ["before", "after", "diff"].filter(function (role) { return role in pics; });
    if (!roles.length) { return null; }
    var same = pics.before !== undefined && pics.before === pics.after && !("diff" in pics);
    if (same) { roles = ["before"]; }
    var figures = roles.map(function (role) { return { role: role, picture: picture(pics[role]) }; });
    var shown = figures.filter(function (f) { return f.picture; });
    var widest = Math.max.apply(null, [1].concat(shown.map(function (f) { return f.picture[1]; })));
    var tallest = Math.max.apply(null, [1].concat(shown.map(function (f) { return f.picture[2]; })));
    var has = function (role) { return !same && figures.some(function (f) { return f.role === role && f.picture; }); };
    var modes = [];
    if (has("before") && has("after")) { modes.push(["slider", "Slider"]); }
    modes.push(["side", "Side by side"]);
    if (has("diff")) { modes.push(["diff", "Diff"]); }
    var block = el("div", "viewer");
    block.style.setProperty("--aspect", (widest / tallest).toFixed(4));
    block.style.setProperty("--n", String(figures.length));
    // With no picture to size it by, the stage is as wide as a note needs.
    block.style.setProperty("--natural", shown.length ? NATURAL_ZOOM * widest + "px" : "12rem");
    var bar = el("div", "modes");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "View");
    bar.hidden = modes.length < 2;
    modes.forEach(function (mode) {
      var button = el("button", null, mode[1]);
      button.type = "button";
      button.setAttribute("data-mode", mode[0]);
      bar.appendChild(button);
    });
    var stage = el("div", "stage");
    var sizes = image.sizes || {}, more = 0;
    figures.forEach(function (f) {
      var figure = el("figure", "layer " + f.role);
      if (f.picture) {
        var pic = el("div", "pic");
        pic.style.setProperty("--w", (100 * f.picture[1] / widest).toFixed(3) + "%");
        pic.appendChild(img(f.picture, plain(image) + ": " + (same ? "picture" : f.role), f.picture[1], f.picture[2]));
        more = Math.max(more, percentBoxes(pic, image, sizes[f.role]));
        figure.appendChild(pic);
      } else {
        figure.appendChild(missing(same ? "the" : f.role));
      }
      figure.appendChild(el("figcaption", null, same ? "before and after (one picture)" : f.role));
      stage.appendChild(figure);
    });
    block.append(bar, stage);
    if (modes[0][0] === "slider") {
      var slider = el("input", "slider");
      slider.type = "range";
      slider.min = "0";
      slider.max = "100";
      slider.value = "50";
      slider.setAttribute("aria-label", "Divider between before (left) and after (right)");
      block.appendChild(slider);
    }
    if (more) { block.appendChild(undrawn(more)); }
    setMode(block, modes[0][0]);
    return block;
  }

  function views(index) {
    var crops = focus(index), whole = viewer(index);
    if (!crops && !whole) { return null; }
    var block = el("div", "views");
    if (crops) { block.appendChild(crops); }
    if (whole) {
      if (crops) { whole.insertBefore(el("h4", null, "Whole image"), whole.firstChild); }
      block.appendChild(whole);
    }
    return block;
  }

  function heading(image) {
    var h3 = el("h3");
    if (image.previous !== undefined) {
      var arrow = el("span", "arrow", " → ");
      arrow.setAttribute("aria-label", "renamed to");
      h3.append(nameNode(image, true), arrow);
    }
    h3.appendChild(nameNode(image, false));
    return h3;
  }

  function similarHint(image) {
    var similar = image.similar;
    var hint = el("p", "similar");
    hint.append("Looks like " + number(similar.cards) + " other change" + (similar.cards === 1 ? "" : "s") +
      " (" + number(similar.images) + " image" + (similar.images === 1 ? "" : "s") + "): ");
    similar.links.forEach(function (position, i) {
      var link = el("a");
      link.href = "#image-" + position;
      link.appendChild(nameNode(images[position], false));
      hint.append(i ? ", " : "", link);
    });
    if (similar.cards > similar.links.length) {
      hint.append(", and " + number(similar.cards - similar.links.length) + " more");
    }
    return hint;
  }

  function card(index, kind, status) {
    var image = images[index];
    var item = el("li", "item " + kind);
    item.id = "image-" + index;
    item.setAttribute("data-item", String(index));
    item.setAttribute("data-status", status);
    item.append(heading(image), facts(image.facts));
    if (image.similar) { item.appendChild(similarHint(image)); }
    if (image.detail) {
      var pre = el("pre", "detail");
      appendRuns(pre, image.detail);
      item.appendChild(pre);
    }
    var shown = views(index);
    if (shown) { item.appendChild(shown); }
    return item;
  }

  // --- a shared change: one card for all its images ----------------------------------------

  function groupCard(entry, matched, status) {
    var group = groups[entry.group], image = images[entry.first];
    var item = el("li", "item card group");
    item.id = "image-" + entry.first;
    item.setAttribute("data-item", String(entry.first));
    item.setAttribute("data-status", status);
    item.setAttribute("data-group", group.id);
    var title = el("h3", "share", number(group.count) + " images share this change");
    var shownAs = el("p", "shown-as");
    shownAs.append(el("span", "muted", "Shown: "), nameNode(image, false));
    item.append(title, shownAs, facts(image.facts));
    if (image.similar) { item.appendChild(similarHint(image)); }
    var shown = views(entry.first);
    if (shown) { item.appendChild(shown); }
    var state = { group: group, matched: matched, drawn: 0, elsewhere: false };
    var details = el("details", "members");
    var summary = el("summary", null, "The " + number(group.count) + " images");
    if (matched) { summary.append(" (" + number(matched.length) + " match the search)"); }
    details.appendChild(summary);
    if (group.elsewhere.length) {
      var only = el("input", "elsewhere");
      only.type = "checkbox";
      only.id = "elsewhere-" + (++uid);
      var label = el("label", null, "Only the " + number(group.elsewhere.length) + " where the change is elsewhere");
      label.htmlFor = only.id;
      var line = el("p", "where-filter");
      line.append(only, " ", label);
      details.appendChild(line);
    }
    var list = el("ol", "names");
    var more = el("button", "more-names");
    more.type = "button";
    more.hidden = true;
    details.append(list, more);
    item.append(details, el("div", "opened"));
    groupStates.set(item, state);
    if (matched) { details.open = true; drawNames(item); }
    return item;
  }

  function members(state) {
    var group = state.group, all;
    if (state.matched) {
      all = state.matched;
    } else {
      all = [];
      for (var i = 0; i < group.count; i++) { all.push(group.first + i); }
    }
    if (!state.elsewhere) { return all; }
    var away = {};
    group.elsewhere.forEach(function (index) { away[index] = true; });
    return all.filter(function (index) { return away[index]; });
  }

  function drawNames(item) {
    var state = groupStates.get(item), list = item.querySelector("ol.names");
    var button = item.querySelector("button.more-names");
    var all = members(state), stop = Math.min(all.length, state.drawn + NAMES);
    var fragment = document.createDocumentFragment();
    for (; state.drawn < stop; state.drawn++) {
      var index = all[state.drawn], image = images[index];
      var li = el("li"), open = el("button", "member");
      open.type = "button";
      open.setAttribute("data-open", String(index));
      open.appendChild(nameNode(image, false));
      li.appendChild(open);
      if (index === state.group.first) {
        li.append(" ", el("span", "muted", "(shown above)"));
      } else if (state.group.elsewhere.indexOf(index) !== -1) {
        li.append(" ", el("span", "muted", fact(image, "area")));
      }
      fragment.appendChild(li);
    }
    list.appendChild(fragment);
    button.hidden = state.drawn >= all.length;
    button.textContent = "Show " + number(Math.min(NAMES, all.length - state.drawn)) + " more of " +
      number(all.length - state.drawn);
  }

  function redrawNames(item) {
    var state = groupStates.get(item);
    state.drawn = 0;
    item.querySelector("ol.names").replaceChildren();
    drawNames(item);
  }

  // One image of a shared change, opened as its own card inside the group's.
  function openMember(item, index) {
    var state = groupStates.get(item), panel = item.querySelector(".opened");
    if (index === state.group.first) {
      panel.replaceChildren();
      item.scrollIntoView();
      return item;
    }
    var opened = card(index, "card", item.getAttribute("data-status"));
    var close = el("button", "close", "Close");
    close.type = "button";
    opened.insertBefore(close, opened.firstChild);
    panel.replaceChildren(opened);
    opened.scrollIntoView();
    return opened;
  }

  // Closing a member's card removes the focused Close button: the focus goes back to the name
  // that opened it (else to the list of names), not to the page's start.
  function closeMember(item, opened) {
    var details = item.querySelector("details.members");
    var selector = 'button.member[data-open="' + opened.getAttribute("data-item") + '"]';
    var name = details.open ? details.querySelector(selector) : null;
    item.querySelector(".opened").replaceChildren();
    (name || details.querySelector("summary")).focus();
  }

  // --- sections: pages of entries, drawn as they come into view ------------------------------

  function entryNode(section, shown) {
    if (shown.entry.group === undefined) { return card(shown.entry.first, section.kind, section.key); }
    return groupCard(shown.entry, shown.matched, section.key);
  }

  function pageEnd(section) {
    return Math.min(section.shown.length, (section.page + 1) * PAGE[section.kind]);
  }

  function drawTo(section, last) {
    var fragment = document.createDocumentFragment();
    for (; section.drawn <= last; section.drawn++) {
      fragment.appendChild(entryNode(section, section.shown[section.drawn]));
    }
    section.list.appendChild(fragment);
  }

  function fill(section) {
    if (section.element.hidden || (section.details && !section.details.open)) { return; }
    var end = pageEnd(section);
    while (section.drawn < end && section.more.getBoundingClientRect().top < innerHeight + AHEAD) {
      drawTo(section, Math.min(end, section.drawn + BATCH[section.kind]) - 1);
    }
    controls(section, end);
  }

  function controls(section, end) {
    var size = PAGE[section.kind], left = end - section.drawn;
    section.button.hidden = left === 0;
    section.button.textContent = "Show " + number(Math.min(left, BATCH[section.kind])) + " more";
    var pages = Math.ceil(section.shown.length / size);
    section.pager.hidden = pages < 2;
    if (pages > 1) {
      var first = section.page * size + 1;
      var noun = section.kind === "card" ? "Cards " : "Rows ";
      section.pager.querySelector("span").textContent = noun + number(first) + "–" + number(end) + " of " +
        number(section.shown.length) + ", page " + number(section.page + 1) + " of " + number(pages);
      section.pager.querySelector('[data-page="-1"]').disabled = section.page === 0;
      section.pager.querySelector('[data-page="1"]').disabled = section.page === pages - 1;
    }
  }

  function turn(section, page) {
    section.page = page;
    section.drawn = page * PAGE[section.kind];
    section.list.replaceChildren();
    section.element.scrollIntoView();
    fill(section);
  }

  // --- the filter ------------------------------------------------------------------------

  function showAll() {
    data.sections.forEach(function (key) { active[key] = true; });
  }

  function readState() {
    var params = new URLSearchParams(location.hash.slice(1));
    var wanted = params.get("status");
    showAll();
    if (wanted) {
      var list = wanted.split(",");
      data.sections.forEach(function (key) { active[key] = list.indexOf(key) !== -1; });
    }
    search.value = params.get("q") || "";
  }

  function saveState(typed) {
    var params = new URLSearchParams();
    var on = data.sections.filter(function (key) { return active[key]; });
    if (on.length !== data.sections.length) { params.set("status", on.join(",")); }
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
    var visible = 0;
    sections.forEach(function (section) {
      section.shown = [];
      if (active[section.key]) {
        section.entries.forEach(function (entry) {
          var matched = null, count = entry.count;
          if (query) {
            matched = [];
            for (var i = entry.first; i < entry.first + entry.count; i++) {
              if (texts[i].indexOf(query) !== -1) { matched.push(i); }
            }
            count = matched.length;
          }
          if (count) {
            section.shown.push({ entry: entry, matched: entry.group === undefined ? null : matched });
            visible += count;
          }
        });
      }
      section.element.hidden = section.shown.length === 0;
      if (section.details && query && section.shown.length) { section.details.open = true; }
      section.page = 0;
      section.drawn = 0;
      section.list.replaceChildren();
    });
    filters.forEach(function (button) {
      var key = button.getAttribute("data-filter");
      button.setAttribute("aria-pressed", String(active[key] === true));
    });
    var total = images.length;
    shownCount.textContent = visible === total
      ? "Showing all " + number(total) + " images"
      : "Showing " + number(visible) + " of " + number(total) + " images";
    noMatch.hidden = visible !== 0;
    saveState(typed);
    sections.forEach(fill);
  }

  function toggle(key) {
    var on = data.sections.filter(function (s) { return active[s]; });
    if (on.length === data.sections.length) {
      data.sections.forEach(function (s) { active[s] = s === key; });
    } else {
      active[key] = !active[key];
      if (!data.sections.some(function (s) { return active[s]; })) { showAll(); }
    }
    apply();
  }

  function setMode(block, mode) {
    block.setAttribute("data-mode", mode);
    block.querySelectorAll("button[data-mode]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-mode") === mode));
    });
    var slider = block.querySelector("input.slider");
    if (slider) { slider.hidden = mode !== "slider"; }
  }

  // A link to an image's entry (#image-N, the approval banner's): draw it and scroll to it.
  function reveal() {
    var match = /^image-(\d+)$/.exec(location.hash.slice(1));
    var image = match && images[Number(match[1])];
    if (!image) { return; }
    var index = Number(match[1]), section = sections[image.section];
    var position = -1;
    section.shown.forEach(function (shown, i) {
      var entry = shown.entry;
      if (index >= entry.first && index < entry.first + entry.count) { position = i; }
    });
    if (position === -1) { return; }
    if (section.details) { section.details.open = true; }
    section.page = Math.floor(position / PAGE[section.kind]);
    section.drawn = section.page * PAGE[section.kind];
    section.list.replaceChildren();
    drawTo(section, position);
    var node = section.list.lastChild;
    if (index !== section.shown[position].entry.first) {
      node.querySelector("details.members").open = true;
      node = openMember(node, index);
    }
    node.scrollIntoView();
    fill(section);
  }

  var pending = 0;
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target === search) {
      clearTimeout(pending);
      pending = setTimeout(apply, 120);
    } else if (target.classList.contains("slider")) {
      target.closest(".viewer").style.setProperty("--pos", target.value + "%");
    } else if (target.classList.contains("elsewhere")) {
      var item = target.closest("li.group");
      groupStates.get(item).elsewhere = target.checked;
      redrawNames(item);
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || button.disabled) { return; }
    var section = button.closest("div.more") && button.closest("div.more").section;
    if (button.hasAttribute("data-mode")) {
      setMode(button.closest(".viewer"), button.getAttribute("data-mode"));
    } else if (button.hasAttribute("data-filter")) {
      toggle(button.getAttribute("data-filter"));
    } else if (button.id === "show-all") {
      showAll();
      search.value = "";
      apply();
    } else if (button.hasAttribute("data-open")) {
      openMember(button.closest("li.group"), Number(button.getAttribute("data-open")));
    } else if (button.classList.contains("close")) {
      closeMember(button.closest("li.group"), button.closest("li.item"));
    } else if (button.classList.contains("more-names")) {
      drawNames(button.closest("li.group"));
    } else if (section && button.hasAttribute("data-page")) {
      turn(section, section.page + Number(button.getAttribute("data-page")));
    } else if (section) {
      drawTo(section, Math.min(pageEnd(section), section.drawn + BATCH[section.kind]) - 1);
      controls(section, pageEnd(section));
    }
  });
  // A section or a group's list of names drawn when it is opened ("toggle" does not bubble).
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.open) { return; }
    if (details.classList.contains("members")) {
      var item = details.closest("li.group");
      if (!groupStates.get(item).drawn) { drawNames(item); }
      return;
    }
    sections.forEach(function (section) {
      if (section.details === details) { fill(section); }
    });
  }, true);
  // As the reviewer scrolls (or the window grows), each section draws what came near.
  function near() { sections.forEach(fill); }
  window.addEventListener("scroll", near, { passive: true });
  window.addEventListener("resize", near);
  // The report's own fragments (a filter, an image's entry, none) set what is shown. Any other
  // is a part of the page (the settings' explanations), which keeps the filter.
  function ownFragment() {
    var hash = location.hash.slice(1), params = new URLSearchParams(hash);
    return !hash || /^image-\d+$/.test(hash) || params.has("status") || params.has("q");
  }

  // Scrolls to the part of the page the fragment names. The sections above it then draw what
  // came near, which moves it down: scroll again until nothing more is drawn.
  function land() {
    var target = document.getElementById(location.hash.slice(1));
    if (!target) { return; }
    var top;
    do {
      target.scrollIntoView();
      top = target.getBoundingClientRect().top;
      near();
    } while (target.getBoundingClientRect().top !== top);
  }

  window.addEventListener("hashchange", function () {
    if (ownFragment()) {
      readState();
      apply();
      reveal();
    } else {
      land();
    }
  });

  document.getElementById("toolbar").hidden = false;
  readState();
  apply();
  if (ownFragment()) { reveal(); } else { land(); }
  performance.mark("snapcompare:first-cards");
  document.body.setAttribute("data-ready", "true");
})();
