/* numtrans explorer, the drawing half: tokens, attention (head view, model view), next-token
 * bars, beam hypotheses, masked-token predictions. Plain JS + SVG, no libraries, no network.
 * The server's page (explorer_app.js adds its controls) and the notebook views
 * (numtrans.viz_notebook) both draw with these functions; in a notebook the data is embedded in
 * the page. Every drawn element carries data-* attributes (data-weight, data-prob, data-id)
 * holding the exact numbers, for tests and for the curious. */
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

  /* head view: queries on the left, keys on the right (the same tokens for self-attention,
   * decoder and source tokens for cross-attention), one line per (query, key) pair whose
   * opacity is the attention weight. Hovering a query keeps only its lines. */
  function renderHeadView(root, queries, keys, w) {
    clear(root);
    var rowH = 20, width = 360, xL = 110, xR = 250;
    var s = svg("svg", {width: width, height: rowH * Math.max(queries.length, keys.length) + 10,
      "class": "nt-headview"}, root);
    var lines = svg("g", {}, s);
    for (var q = 0; q < queries.length; q++) {
      for (var k = 0; k < keys.length; k++) {
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
    queries.forEach(function (t, i) {
      var a = svg("text", {x: xL, y: rowH * i + 19, "text-anchor": "end", "class": "nt-query",
        "data-index": i, text: show(t.piece)}, s);
      a.addEventListener("mouseenter", function () { focus(i); });
      a.addEventListener("mouseleave", function () { focus(null); });
    });
    keys.forEach(function (t, i) {
      svg("text", {x: xR, y: rowH * i + 19, "class": "nt-key", "data-index": i,
        text: show(t.piece)}, s);
    });
  }

  /* a heatmap of one (Tq, Tk) matrix: rows = queries, columns = keys. The darkest cell is the
   * map's largest weight (a head spread over 30 tokens has no weight near 1). */
  function heatmap(parent, w, cell, attrs) {
    var Tq = w.length, Tk = w[0].length, top = 1e-12;
    w.forEach(function (row) { row.forEach(function (v) { top = Math.max(top, v); }); });
    var s = svg("svg", Object.assign({width: cell * Tk, height: cell * Tq}, attrs), parent);
    for (var q = 0; q < Tq; q++) {
      for (var k = 0; k < Tk; k++) {
        svg("rect", {x: k * cell, y: q * cell, width: cell, height: cell, fill: shade(w[q][k] / top),
          "data-from": q, "data-to": k, "data-weight": w[q][k]}, s);
      }
    }
    return s;
  }

  /* model view: a grid of layers x heads; a click calls onPick(layer, head). */
  function renderModelView(root, all, onPick) {
    clear(root);
    var w0 = all[0][0], cell = Math.max(2, Math.floor(60 / Math.max(w0.length, w0[0].length)));
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
    return el("div", {"class": "nt-big"}, root);
  }

  /* attention panel, page and notebook: layer/head pickers, head view, model view. ``data``:
   * {tokens | query_tokens + key_tokens, weights (L, H, Tq, Tk)}; ``headView: false`` draws
   * the model view alone (numtrans.viz_notebook.model_view). */
  function attentionPanel(root, data) {
    var queries = data.query_tokens || data.tokens, keys = data.key_tokens || data.tokens;
    var all = data.weights, L = all.length, H = all[0].length;
    clear(root);
    var bar = el("div", {"class": "nt-pick"}, root);
    el("label", {text: "layer "}, bar);
    var ls = el("select", {"class": "nt-layer"}, bar);
    el("label", {text: " head "}, bar);
    var hs = el("select", {"class": "nt-head"}, bar);
    for (var l = 0; l < L; l++) el("option", {value: l, text: String(l)}, ls);
    for (var h = 0; h < H; h++) el("option", {value: h, text: String(h)}, hs);
    var head = data.headView === false ? null : el("div", {"class": "nt-headview-box"}, root);
    el("h3", {text: "Model view: every layer x head (click one to enlarge it)"}, root);
    var model = el("div", {"class": "nt-modelview"}, root);
    var big;
    function draw() {
      var w = all[Number(ls.value)][Number(hs.value)];
      if (head) renderHeadView(head, queries, keys, w);
      clear(big);
      el("div", {text: "layer " + ls.value + ", head " + hs.value + " (rows: queries, " +
        "columns: keys; darkest = the map's largest weight)"}, big);
      heatmap(big, w, 16, {"class": "nt-enlarged"});
    }
    big = renderModelView(model, all, function (l, h) { ls.value = l; hs.value = h; draw(); });
    ls.addEventListener("change", draw);
    hs.addEventListener("change", draw);
    draw();
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

  /* The distribution sample_next draws from (numtrans.serve.trace.next_token_distribution):
   * softmax(top_p(top_k(logits / T))); T = 0 puts all the mass on the (first) argmax. */
  function distribution(logits, temperature, topK, topP) {
    var V = logits.length, i, z = new Array(V), p = new Array(V);
    if (temperature === 0) {
      var best = 0;
      for (i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
      for (i = 0; i < V; i++) p[i] = i === best ? 1 : 0;
      return p;
    }
    for (i = 0; i < V; i++) z[i] = logits[i] / temperature;
    if (topK && topK < V) { // keep logits >= the k-th largest (ties kept, as np.partition)
      var kth = z.slice().sort(function (a, b) { return b - a; })[topK - 1];
      for (i = 0; i < V; i++) if (z[i] < kth) z[i] = -Infinity;
    }
    function softmax(x) {
      var m = Math.max.apply(null, x), s = 0, out = x.map(function (v) { return Math.exp(v - m); });
      out.forEach(function (v) { s += v; });
      return out.map(function (v) { return v / s; });
    }
    if (topP && topP < 1) { // drop a token once the strictly better ones hold >= top_p
      var q = softmax(z), order = z.map(function (_, j) { return j; });
      order.sort(function (a, b) { return z[b] - z[a] || a - b; });
      var before = 0;
      order.forEach(function (j) { var drop = before >= topP; before += q[j]; if (drop) z[j] = -Infinity; });
    }
    return softmax(z);
  }

  /* next-token panel with its own sliders, for a notebook: data = {logits (V), pieces {id:
   * piece} of the likeliest tokens, k}; the bars are recomputed in the browser. */
  function nextPanel(root, data) {
    clear(root);
    if (data.tokens) renderTokens(el("div", {"class": "nt-context"}, root), data.tokens);
    var ctl = el("div", {"class": "nt-pick"}, root), inputs = {};
    [["temperature", 0, 2, 0.05, 1], ["top-k", 0, 50, 1, 0], ["top-p", 0.05, 1, 0.05, 1]]
      .forEach(function (s) {
        var lab = el("label", {text: " " + s[0] + " "}, ctl);
        inputs[s[0]] = el("input", {type: "range", min: s[1], max: s[2], step: s[3], value: s[4],
          "class": "nt-" + s[0]}, lab);
        inputs[s[0]].addEventListener("input", draw);
        inputs[s[0] + "v"] = el("span", {}, lab);
      });
    var bars = el("div", {"class": "nt-next"}, root);
    function draw() {
      var t = Number(inputs.temperature.value), k = Number(inputs["top-k"].value);
      var tp = Number(inputs["top-p"].value);
      inputs.temperaturev.textContent = t;
      inputs["top-kv"].textContent = k > 0 ? k : "off";
      inputs["top-pv"].textContent = tp < 1 ? tp : "off";
      var p = distribution(data.logits, t, k, tp), raw = distribution(data.logits, 1, 0, 1);
      var ids = Object.keys(data.pieces).map(Number);
      ids.sort(function (a, b) { return p[b] - p[a] || raw[b] - raw[a] || a - b; });
      renderNext(bars, ids.slice(0, data.k).map(function (i) {
        return {id: i, piece: data.pieces[i], prob: p[i], raw_prob: raw[i]};
      }));
    }
    draw();
  }

  /* beam hypotheses of a translation, best first. */
  function renderHypotheses(root, hyps) {
    clear(root);
    var ol = el("ol", {"class": "nt-hyps"}, root);
    hyps.forEach(function (h, r) {
      var li = el("li", {"class": "nt-hyp", "data-rank": r, "data-score": h.score,
        "data-log-prob": h.log_prob, "data-text": h.text,
        "data-ids": h.tokens.map(function (t) { return t.id; }).join(" ")}, ol);
      el("span", {"class": "nt-hyp-text", text: h.text || "(empty)"}, li);
      el("span", {"class": "nt-hyp-score", text: "  score " + h.score.toFixed(4) +
        ", log P " + h.log_prob.toFixed(3) + (h.finished ? "" : ", unfinished")}, li);
    });
  }

  /* masked-LM predictions: for each [MASK], its top tokens as bars. */
  function renderFillMask(root, masks) {
    clear(root);
    masks.forEach(function (m) {
      var box = el("div", {"class": "nt-mask", "data-index": m.index}, root);
      el("div", {text: "[MASK] at position " + m.index}, box);
      renderNext(el("div", {}, box), m.top);
    });
  }

  /* a classifier's answer: one bar per class, or a regression head's value. */
  function renderClasses(root, answer) {
    clear(root);
    if (answer.value !== undefined) {
      el("div", {"class": "nt-value", "data-value": answer.value,
        text: "predicted value: " + answer.value.toFixed(4)}, root);
      return;
    }
    renderNext(root, answer.labels.map(function (name, i) {
      return {id: i, piece: name, prob: answer.probs[i], raw_prob: answer.probs[i]};
    }));
  }

  /* a translation in a notebook: source tokens, beam hypotheses, one attention stack. */
  function translationPanel(root, data) {
    clear(root);
    renderTokens(el("div", {"class": "nt-source"}, root), data.tokens);
    renderHypotheses(el("div", {"class": "nt-beams"}, root), data.hypotheses);
    el("h3", {text: data.stack + " attention of the best hypothesis"}, root);
    attentionPanel(el("div", {"class": "nt-attention"}, root), data);
  }

  window.numtransExplorer = {translationPanel: translationPanel, renderClasses: renderClasses,
    el: el, clear: clear, show: show, renderTokens: renderTokens,
    renderHeadView: renderHeadView, renderModelView: renderModelView, heatmap: heatmap,
    attentionPanel: attentionPanel, renderNext: renderNext, distribution: distribution,
    nextPanel: nextPanel, renderHypotheses: renderHypotheses, renderFillMask: renderFillMask};
})();
