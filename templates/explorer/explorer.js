// The explorer's cards, filters, sorting and keyboard moves. Plain JavaScript, no library; the data
// are the global XAIKIT_EXPLORER that data.js sets (written by report/explorer.py at every build).
(function () {
  "use strict";
  var D = window.XAIKIT_EXPLORER;
  var $ = function (id) { return document.getElementById(id); };
  var cardsEl = $("cards");
  var cards = [];          // {img, el} in explained order
  var current = null;

  var OUTCOME = {correct: "correct", FP: "false positive", FN: "false negative"};

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { e.appendChild(c); } });
    return e;
  }

  function value(img, key) {
    var v = img.numbers[key];
    return (v === undefined || v === null) ? null : v;
  }

  function fmt(v, format) {
    if (v === null || v === undefined) { return "\u2013"; }
    if (format === "pct") { return (100 * v).toFixed(2) + "%"; }
    return v.toFixed(4);
  }

  function thumb(src, alt, size) {
    return el("img", {src: src, alt: alt, loading: "lazy", width: size, height: size, decoding: "async"});
  }

  function numbersTable(img) {
    var rows = [
      ["true class", img.label, "label"],
      ["target (explained class)", img.target, "target"],
      ["decision", OUTCOME[img.outcome], "outcome"],
      ["shown in the report", img.report ? "yes" : "no", "report"]
    ];
    var t = el("table", {class: "nums"});
    rows.forEach(function (r) {
      t.appendChild(el("tr", {"data-key": r[2]}, [el("th", {text: r[0]}), el("td", {text: r[1]})]));
    });
    D.columns.forEach(function (c) {
      var v = value(img, c.key);
      var td = el("td", {text: fmt(v, c.format)});
      if (v !== null) { td.setAttribute("data-value", String(v)); }
      t.appendChild(el("tr", {"data-key": c.key}, [el("th", {text: c.label}), td]));
    });
    return t;
  }

  function mapGroups(img) {
    var box = el("div", {class: "maps"});
    var groups = [];
    D.rows.forEach(function (r) {
      if (!img.maps[r.key]) { return; }
      var g = groups.length && groups[groups.length - 1].name === r.group ? groups[groups.length - 1] : null;
      if (!g) {
        g = {name: r.group, strip: el("div", {class: "strip"})};
        groups.push(g);
        box.appendChild(el("section", {class: "group"}, [el("h3", {text: r.group}), g.strip]));
      }
      g.strip.appendChild(el("figure", {"data-row": r.key}, [
        el("div", {class: "frame"}, [thumb(img.maps[r.key], r.label + " of " + img.name, 112)]),
        el("figcaption", {text: r.label})]));
    });
    return box;
  }

  function card(img) {
    var link = el("a", {href: "#" + img.id, text: img.name.split("/").pop()});
    var side = el("div", {class: "side"}, [
      el("h2", {}, [link]),
      el("p", {class: "path", text: img.name}),
      img.maps.image ? el("figure", {class: "xray"}, [thumb(img.maps.image, "X-ray " + img.name, 224)]) : null,
      numbersTable(img)]);
    var e = el("article", {class: "card " + img.outcome, id: img.id, tabindex: "-1",
                           "data-label": img.label, "data-target": img.target, "data-outcome": img.outcome},
               [side, mapGroups(img)]);
    if (img.maps.image) { e.setAttribute("data-xray", img.maps.image); }
    return e;
  }

  function options() {
    var col = $("f-col"), sort = $("sort");
    col.appendChild(el("option", {value: "", text: "(none)"}));
    D.columns.forEach(function (c) {
      col.appendChild(el("option", {value: c.key, text: c.label}));
      sort.appendChild(el("option", {value: c.key, text: c.label}));
    });
  }

  function num(id) {
    var s = $(id).value.trim();
    return s === "" ? null : Number(s);
  }

  function keep(img) {
    var label = $("f-label").value, outcome = $("f-outcome").value, target = $("f-target").value;
    var set = $("f-set").value, col = $("f-col").value, lo = num("f-min"), hi = num("f-max");
    if (label && img.label !== label) { return false; }
    if (outcome && img.outcome !== outcome) { return false; }
    if (target && img.target !== target) { return false; }
    if (set === "report" && !img.report) { return false; }
    if (set === "q5" && !img.q5) { return false; }
    if (col && (lo !== null || hi !== null)) {
      var v = value(img, col);
      if (v === null || (lo !== null && v < lo) || (hi !== null && v > hi)) { return false; }
    }
    return true;
  }

  function apply() {
    var key = $("sort").value, dir = $("sort-dir").value === "desc" ? -1 : 1;
    var order = cards.slice();
    if (key) {
      order.sort(function (a, b) {
        var u = value(a.img, key), v = value(b.img, key);
        if (u === null || v === null) { return (u === null) - (v === null) || a.i - b.i; }   // missing last
        return dir * (u - v) || a.i - b.i;
      });
    }
    var shown = 0;
    order.forEach(function (c) {
      c.el.hidden = !keep(c.img);
      if (!c.el.hidden) { shown += 1; }
      cardsEl.appendChild(c.el);
    });
    $("count").textContent = String(shown);
  }

  function reset() {
    $("filters").reset();
    overlay();
    apply();
  }

  function overlay() {
    var on = $("overlay").checked;
    document.body.classList.toggle("overlay", on);
    cards.forEach(function (c) {
      var x = c.el.getAttribute("data-xray");
      if (on && x) { c.el.style.setProperty("--xray", "url(\"" + new URL(x, document.baseURI).href + "\")"); }
    });
  }

  function visible() {
    return Array.prototype.filter.call(cardsEl.children, function (e) { return !e.hidden; });
  }

  function setCurrent(e, scroll) {
    if (current) { current.classList.remove("current"); }
    current = e;
    if (!e) { return; }
    e.classList.add("current");
    if (scroll) { e.scrollIntoView({block: "start"}); e.focus({preventScroll: true}); }
  }

  function move(step) {
    var vis = visible();
    if (!vis.length) { return; }
    var i = vis.indexOf(current);
    if (i < 0) {     // start from the first card on screen
      i = vis.findIndex(function (e) { return e.getBoundingClientRect().bottom > $("bar").offsetHeight; });
      i = i < 0 ? 0 : i - step;
    }
    var next = vis[Math.max(0, Math.min(vis.length - 1, i + step))];
    setCurrent(next, true);
    history.replaceState(null, "", "#" + next.id);
  }

  function goToHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var e = id ? document.getElementById(id) : null;
    if (!e || !e.classList.contains("card")) { return; }
    if (e.hidden) { reset(); }
    setCurrent(e, true);
  }

  function notes() {
    var n = $("notes");
    var text = "Colours: |map| from black (0) through red to yellow (the 99th percentile of the map for IG, its " +
      "maximum for Grad-CAM), each map scaled on its own; signed IG red for positive and blue for negative " +
      "attribution. The target is the class decided at the operating threshold" +
      (D.threshold !== null && D.threshold !== undefined ? " (PNEUMONIA when P(PNEUMONIA) \u2265 " + D.threshold.toFixed(3) + ")" : "") +
      "; every map explains the logit margin of that class. A false positive is a NORMAL image decided " +
      "PNEUMONIA, a false negative the reverse.";
    n.appendChild(el("p", {text: text}));
    if (D.not_saved.length) {
      n.appendChild(el("p", {text: "Not saved per image by this build, so not shown: " + D.not_saved.join(", ") +
        " (the report gives their means and intervals)."}));
    }
  }

  function presets() {     // index.html?set=q5&outcome=FN: the report's links open a filtered view
    var q = new URLSearchParams(location.search);
    ["label", "outcome", "target", "set"].forEach(function (k) {
      var s = $("f-" + k);
      if (q.has(k) && Array.prototype.some.call(s.options, function (o) { return o.value === q.get(k); })) {
        s.value = q.get(k);
      }
    });
  }

  function keys(ev) {
    var t = ev.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    var step = {ArrowDown: 1, ArrowRight: 1, j: 1, ArrowUp: -1, ArrowLeft: -1, k: -1}[ev.key];
    if (step) { ev.preventDefault(); move(step); }
  }

  function barHeight() {   // cards scroll to just below the sticky bar, whose height depends on the width
    document.documentElement.style.setProperty("--bar", $("bar").offsetHeight + "px");
  }

  function watchBar() {    // measured once the bar holds its filters, and again whenever it changes height
    barHeight();
    if (window.ResizeObserver) { new ResizeObserver(barHeight).observe($("bar")); }   // a resized window reflows the bar too
    else { window.addEventListener("resize", barHeight); }
  }

  function start() {
    if (!D) { cardsEl.textContent = "data.js is missing or did not load."; return; }
    $("profile").textContent = D.profile && D.profile !== "full" ? "(" + D.profile + " profile)" : "";
    $("total").textContent = String(D.images.length);
    D.images.forEach(function (img, i) {
      img.numbers.p = img.p;
      cards.push({img: img, el: card(img), i: i});
    });
    options();
    notes();
    presets();
    apply();
    watchBar();
    $("filters").addEventListener("input", apply);
    $("filters").addEventListener("change", apply);
    $("overlay").addEventListener("change", overlay);
    $("reset-filters").addEventListener("click", reset);
    document.addEventListener("keydown", keys);
    window.addEventListener("hashchange", goToHash);
    goToHash();
  }

  start();
})();
