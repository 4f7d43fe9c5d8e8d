/* numtrans explorer: tokens, attention (head view, model view), next token, generation.
 * Plain JS + SVG, no libraries, no network except this page's own /api (server mode).
 * The same file renders inline in Jupyter (numtrans.viz.attention_view): there the data is
 * embedded in the page and no request is made. Every drawn element carries data-* attributes
 * (data-weight, data-prob, data-id) holding the exact numbers, for tests and for the curious. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent, ns) {
    var e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  function svg(tag, attrs, parent) { return el(tag, attrs, parent, true); }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function show(piece) { return piece.replace(/\n/g, "\u21b5").replace(/ /g, "\u2423"); }
  function shade(w) { // white -> dark blue
    var v = Math.round(255 * (1 - Math.min(1, Math.max(0, w))));
    return "rgb(" + v + "," + v + ",255)";
  }

  /* tokens: one box per token with its id; special tokens marked. */
  function renderTokens(root, tokens) {
    clear(root);
    tokens.forEach(function (t, i) {
      var box = el("span", {"class": "nt-token" + (t.special ? " nt-special" : ""),
        "data-id": t.id, "data-index": i, "data-piece": t.piece, title: "id " + t.id}, root);
      el("span", {"class": "nt-piece", text: show(t.piece)}, box);
      el("span", {"class": "nt-id", text: String(t.id)}, box);
    });
  }

  /* head view: queries on the left, keys on the right, one line per (query, key) pair whose
   * opacity is the attention weight. Hovering a query keeps only its lines. */
  function renderHeadView(root, tokens, w) {
    clear(root);
    var T = tokens.length, rowH = 20, width = 360, xL = 110, xR = 250;
    var s = svg("svg", {width: width, height: rowH * T + 10, "class": "nt-headview"}, root);
    var lines = svg("g", {}, s);
    for (var q = 0; q < T; q++) {
      for (var k = 0; k < T; k++) {
        var wt = w[q][k];
        svg("line", {x1: xL + 4, y1: rowH * q + 15, x2: xR - 4, y2: rowH * k + 15,
          stroke: "#1f5fbf", "stroke-width": 2, "stroke-opacity": wt,
          "data-from": q, "data-to": k, "data-weight": wt}, lines);
      }
    }
    function focus(q) {
      lines.querySelectorAll("line").forEach(function (l) {
        var on = q === null || Number(l.getAttribute("data-from")) === q;
        l.setAttribute("stroke-opacity", on ? l.getAttribute("data-weight") : 0);
      });
    }
    tokens.forEach(function (t, i) {
      var a = svg("text", {x: xL, y: rowH * i + 19, "text-anchor": "end", "class": "nt-query",
        "data-index": i, text: show(t.piece)}, s);
      a.addEventListener("mouseenter", function () { focus(i); });
      a.addEventListener("mouseleave", function () { focus(null); });
      svg("text", {x: xR, y: rowH * i + 19, "class": "nt-key", "data-index": i,
        text: show(t.piece)}, s);
    });
  }

  /* a heatmap of one (T, T) matrix: rows = queries, columns = keys. */
  function heatmap(parent, w, cell, attrs) {
    var T = w.length, s = svg("svg", Object.assign({width: cell * T, height: cell * T}, attrs), parent);
    for (var q = 0; q < T; q++) {
      for (var k = 0; k < T; k++) {
        svg("rect", {x: k * cell, y: q * cell, width: cell, height: cell, fill: shade(w[q][k]),
          "data-from": q, "data-to": k, "data-weight": w[q][k]}, s);
      }
    }
    return s;
  }

  /* model view: a grid of layers x heads; a click enlarges one and selects it. */
  function renderModelView(root, tokens, all, onPick) {
    clear(root);
    var cell = Math.max(2, Math.floor(60 / tokens.length));
    var grid = el("table", {"class": "nt-grid"}, root);
    all.forEach(function (layer, l) {
      var tr = el("tr", {}, grid);
      el("th", {text: "L" + l}, tr);
      layer.forEach(function (w, h) {
        var td = el("td", {}, tr);
        var m = heatmap(td, w, cell, {"class": "nt-mini", "data-layer": l, "data-head": h});
        m.addEventListener("click", function () { onPick(l, h); });
      });
    });
    var big = el("div", {"class": "nt-big"}, root);
    return big;
  }

  function renderNext(root, top) {
    clear(root);
    top.forEach(function (t) {
      var row = el("div", {"class": "nt-bar", "data-id": t.id, "data-prob": t.prob,
        "data-raw-prob": t.raw_prob}, root);
      el("span", {"class": "nt-bar-label", text: show(t.piece)}, row);
      var bar = el("span", {"class": "nt-bar-fill"}, row);
      bar.style.width = Math.round(300 * t.prob) + "px";
      el("span", {"class": "nt-bar-value", text: (100 * t.prob).toFixed(1) + "%"}, row);
    });
  }

  /* attention panel shared by the page and the notebook: layer/head pickers, views. */
  function attentionPanel(root, data) {
    var tokens = data.tokens, all = data.weights, L = all.length, H = all[0].length;
    clear(root);
    var bar = el("div", {"class": "nt-pick"}, root);
    el("label", {text: "layer "}, bar);
    var ls = el("select", {"class": "nt-layer"}, bar);
    el("label", {text: " head "}, bar);
    var hs = el("select", {"class": "nt-head"}, bar);
    for (var l = 0; l < L; l++) el("option", {value: l, text: String(l)}, ls);
    for (var h = 0; h < H; h++) el("option", {value: h, text: String(h)}, hs);
    var head = el("div", {"class": "nt-headview-box"}, root);
    el("h3", {text: "Model view (click a head)"}, root);
    var model = el("div", {"class": "nt-modelview"}, root);
    var big;
    function draw() {
      var w = all[Number(ls.value)][Number(hs.value)];
      renderHeadView(head, tokens, w);
      clear(big);
      el("div", {text: "layer " + ls.value + ", head " + hs.value}, big);
      heatmap(big, w, 16, {"class": "nt-enlarged"});
    }
    big = renderModelView(model, tokens, all, function (l, h) {
      ls.value = l; hs.value = h; draw();
    });
    ls.addEventListener("change", draw);
    hs.addEventListener("change", draw);
    draw();
  }

  /* ---------------------------------------------------------------- server mode */
  function api(path, body) {
    return fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)}).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
        return j;
      });
    });
  }

  function startApp(root) {
    var $ = function (sel) { return root.querySelector(sel); };
    var status = $("#status");
    function say(msg, bad) { status.textContent = msg; status.className = bad ? "nt-error" : ""; }
    function sampling() {
      var k = Number($("#topk").value), p = Number($("#topp").value);
      return {model: $("#model").value, text: $("#text").value,
        temperature: Number($("#temperature").value),
        top_k: k > 0 ? k : null, top_p: p < 1 ? p : null, k: 10};
    }
    function sliders() {
      $("#temperature-v").textContent = $("#temperature").value;
      $("#topk-v").textContent = Number($("#topk").value) > 0 ? $("#topk").value : "off";
      $("#topp-v").textContent = Number($("#topp").value) < 1 ? $("#topp").value : "off";
    }
    function refreshNext() {
      if (!$("#text").value || $("#next-box").hidden) return Promise.resolve();
      return api("/api/next", sampling()).then(function (j) { renderNext($("#next"), j.top); });
    }
    function run() {
      var body = {model: $("#model").value, text: $("#text").value};
      say("running...");
      return api("/api/attention", body).then(function (j) {
        renderTokens($("#tokens"), j.tokens);
        attentionPanel($("#attention"), j);
        $("#truncated").hidden = !j.truncated;
        return refreshNext();
      }).then(function () {
        say("done");
        root.setAttribute("data-ready", "1");
      }).catch(function (e) { say(e.message, true); });
    }
    function step() {
      var body = sampling();
      body.steps = 1;
      body.seed = Math.floor(Math.random() * 1e9);
      root.removeAttribute("data-ready");
      return api("/api/generate", body).then(function (j) {
        var s = j.steps[0];
        el("span", {"class": "nt-gen-token", "data-id": s.id, "data-prob": s.prob,
          text: show(s.piece)}, $("#generated"));
        $("#kv").textContent = "KV cache: " + (s.kv_cache_length + 1) + " positions";
        $("#text").value = j.text;
        return run();
      }).catch(function (e) { say(e.message, true); });
    }
    fetch("/api/models").then(function (r) { return r.json(); }).then(function (j) {
      j.models.forEach(function (m) {
        el("option", {value: m.name, text: m.name + " (" + m.kind + ")"}, $("#model"));
      });
      function views() {
        var m = j.models.filter(function (x) { return x.name === $("#model").value; })[0];
        $("#next-box").hidden = m.views.indexOf("next") < 0;
      }
      $("#model").addEventListener("change", views);
      views();
      root.setAttribute("data-loaded", "1");
    });
    $("#run").addEventListener("click", run);
    $("#step").addEventListener("click", step);
    ["#temperature", "#topk", "#topp"].forEach(function (id) {
      $(id).addEventListener("input", function () { sliders(); refreshNext(); });
    });
    sliders();
  }

  window.numtransExplorer = {renderTokens: renderTokens, renderHeadView: renderHeadView,
    renderModelView: renderModelView, renderNext: renderNext, attentionPanel: attentionPanel,
    startApp: startApp};
})();
