/* numtrans explorer, the server half: the page's controls, calling this server's own /api.
 * Draws with window.numtransExplorer (explorer.js). */
(function () {
  "use strict";
  var X = window.numtransExplorer, el = X.el, clear = X.clear, show = X.show;

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
    var models = {}, best = null;
    function model() { return models[$("#model").value]; }
    function has(view) { return model().views.indexOf(view) >= 0; }
    function say(msg, bad) {
      $("#status").textContent = msg;
      $("#status").className = bad ? "nt-error" : "";
    }
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
      if (!$("#text").value || !has("next")) return Promise.resolve();
      return api("/api/next", sampling()).then(function (j) { X.renderNext($("#next"), j.top); });
    }
    function refreshFill() {
      if (!has("fill-mask") || $("#text").value.indexOf("[MASK]") < 0) {
        clear($("#fill"));
        return Promise.resolve();
      }
      return api("/api/fill-mask", {model: $("#model").value, text: $("#text").value, k: 5})
        .then(function (j) { X.renderFillMask($("#fill"), j.masks); });
    }
    function refreshClasses() {
      if (!has("classify")) return Promise.resolve();
      return api("/api/classify", {model: $("#model").value, text: $("#text").value})
        .then(function (j) { X.renderClasses($("#classes"), j); });
    }
    function crossAttention() { // a translator: the chosen stack for the best hypothesis
      return api("/api/attention", {model: $("#model").value, text: $("#text").value,
        stack: $("#stack").value, target_ids: best}).then(function (j) {
        X.attentionPanel($("#attention"), j);
      });
    }
    function translate() {
      var beam = Number($("#beam").value);
      return api("/api/translate", {model: $("#model").value, text: $("#text").value,
        beam_size: beam, n_best: beam}).then(function (j) {
        X.renderTokens($("#tokens"), j.source_tokens);
        X.renderHypotheses($("#hyps"), j.hypotheses);
        $("#truncated").hidden = !j.truncated;
        best = j.hypotheses[0].tokens.map(function (t) { return t.id; });
        return crossAttention();
      });
    }
    function selfAttention() {
      return api("/api/attention", {model: $("#model").value, text: $("#text").value})
        .then(function (j) {
          X.renderTokens($("#tokens"), j.tokens);
          X.attentionPanel($("#attention"), j);
          $("#truncated").hidden = !j.truncated;
          return Promise.all([refreshNext(), refreshFill(), refreshClasses()]);
        });
    }
    function done(p) {
      root.removeAttribute("data-ready");
      say("running...");
      return p.then(function () {
        say("done");
        root.setAttribute("data-ready", "1");
      }).catch(function (e) { say(e.message, true); });
    }
    function run() { return done(has("translate") ? translate() : selfAttention()); }
    function step() { // one request of n steps: its own KV cache, prefilled from the text
      var body = sampling();
      body.steps = Number($("#nsteps").value);
      body.seed = Math.floor(Math.random() * 1e9);
      return done(api("/api/generate", body).then(function (j) {
        clear($("#kv"));
        j.steps.forEach(function (s) {
          el("span", {"class": "nt-gen-token", "data-id": s.id, "data-prob": s.prob,
            text: show(s.piece)}, $("#generated"));
          el("div", {"class": "nt-kv", "data-kv-length": s.kv_cache_length,
            text: show(s.piece) + ": fed " + s.fed_tokens + " token(s)" +
            (s.prefill ? " (prefill)" : " (cached)") + "; attended over " +
            s.kv_cache_length + " cached positions, " + (s.kv_cache_bytes / 1024).toFixed(1) +
            " KiB of keys and values"}, $("#kv"));
        });
        $("#text").value = j.text;
        return selfAttention();
      }));
    }
    fetch("/api/models").then(function (r) { return r.json(); }).then(function (j) {
      j.models.forEach(function (m) {
        models[m.name] = m;
        el("option", {value: m.name, text: m.name + " (" + m.kind + ")"}, $("#model"));
      });
      function views() {
        $("#next-box").hidden = !has("next");
        $("#translate-box").hidden = !has("translate");
        $("#stack-pick").hidden = !has("translate");
        $("#fill-box").hidden = !has("fill-mask");
        $("#classify-box").hidden = !has("classify");
        if (has("translate")) $("#beam").value = model().beam_size;
      }
      $("#model").addEventListener("change", views);
      views();
      root.setAttribute("data-loaded", "1");
    });
    $("#run").addEventListener("click", run);
    $("#step").addEventListener("click", step);
    $("#stack").addEventListener("change", function () { done(crossAttention()); });
    ["#temperature", "#topk", "#topp"].forEach(function (id) {
      $(id).addEventListener("input", function () { sliders(); refreshNext(); });
    });
    sliders();
  }

  X.startApp = startApp;
})();
