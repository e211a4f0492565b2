// labqueue monitor: confirmation dialogs everywhere, and the overview's live refresh.
// Plain JS, no dependencies: it polls the JSON API (URL from the page) and redraws.
"use strict";

(function () {
  const COLORS = ["#4f6bed", "#16a394", "#e8833a", "#d6457a", "#8a63d2", "#3a9ad9", "#c9a227", "#5b8c3a"];
  const MAX_WINDOW_S = 300; // the charts show up to the last five minutes
  const MIN_WINDOW_S = 60; // and at least one, so a fresh page is not all squeezed

  // -- confirmation: every form with data-confirm asks first ----------------------------
  function confirmThen(message, proceed) {
    const dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(message)) proceed();
      return;
    }
    document.getElementById("confirm-text").textContent = message;
    dialog.returnValue = "";
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "ok") proceed();
    });
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed) return;
    event.preventDefault();
    confirmThen(form.dataset.confirm, function () {
      const yes = document.createElement("input");
      yes.type = "hidden";
      yes.name = "confirm";
      yes.value = "yes";
      form.appendChild(yes);
      form.dataset.confirmed = "1";
      form.submit();
    });
  });

  // -- the overview ---------------------------------------------------------------------
  const root = document.getElementById("overview");
  if (!root) return;
  const api = document.body.dataset.apiOverview;
  const every = Math.max(500, parseInt(document.body.dataset.refreshMs, 10) || 2000);
  const history = { t: [], queues: {} };
  let lastT = null;
  let skew = 0; // server clock minus ours: the charts use the server's time

  function serverNow() { return Date.now() / 1000 + skew; }
  let colorOf = {};

  const fmt = new Intl.NumberFormat();
  function setText(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function rate(v) { return v === null || v === undefined ? "–" : String(v); }

  function merge(h) {
    const n = history.t.length;
    for (const name of Object.keys(h.queues)) {
      if (!history.queues[name]) history.queues[name] = new Array(n).fill(0);
    }
    for (let i = 0; i < h.t.length; i++) {
      history.t.push(h.t[i]);
      for (const name of Object.keys(history.queues)) {
        const series = h.queues[name];
        history.queues[name].push(series ? series[i] : 0);
      }
    }
    const cutoff = serverNow() - MAX_WINDOW_S - 10;
    let drop = 0;
    while (drop < history.t.length && history.t[drop] < cutoff) drop++;
    if (drop) {
      history.t.splice(0, drop);
      for (const name of Object.keys(history.queues)) history.queues[name].splice(0, drop);
    }
  }

  function assignColors(names) {
    const next = {};
    names.forEach(function (name, i) { next[name] = i % COLORS.length; });
    colorOf = next;
  }

  // What the page shows raw never: control characters, and bytes that were not UTF-8 (lone
  // surrogates in the JSON), written as escapes as the server writes them.
  function shown(text) {
    return text.replace(/[\u{0}-\u{8}\u{b}-\u{1f}\u{7f}-\u{9f}\u{202a}-\u{202e}\u{2066}-\u{2069}\u{d800}-\u{dfff}]/gu, function (c) {
      const code = c.codePointAt(0);
      if (code >= 0xdc80 && code <= 0xdcff) return "\\x" + (code - 0xdc00).toString(16).padStart(2, "0");
      if (code <= 0xff) return "\\x" + code.toString(16).padStart(2, "0");
      return "\\u" + code.toString(16).padStart(4, "0");
    });
  }

  function queueRow(q) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.name;
    const name = document.createElement("td");
    const link = document.createElement("a");
    if (q.url) link.href = q.url;  // none for a name that cannot stand in a URL
    link.textContent = shown(q.name);
    name.appendChild(link);
    const depth = document.createElement("td");
    depth.className = "num depth";
    const age = document.createElement("td");
    age.className = "num age";
    const spark = document.createElement("td");
    spark.className = "spark-col";
    const canvas = document.createElement("canvas");
    canvas.className = "spark";
    spark.appendChild(canvas);
    tr.append(name, depth, age, spark);
    return tr;
  }

  // the same text as the page's ``age`` filter (labqueue/web/fmt.py)
  function ageText(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "unknown";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    const s = Math.floor(seconds);
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
    return Math.floor(s / 86400) + "d " + Math.floor(s % 86400 / 3600) + "h";
  }

  function renderQueues(queues) {
    const body = document.getElementById("queues-body");
    const rows = new Map();
    body.querySelectorAll("tr[data-queue]").forEach(function (tr) { rows.set(tr.dataset.queue, tr); });
    const wanted = queues.map(function (q) { return q.name; });
    if (Array.from(rows.keys()).join("\n") !== wanted.join("\n")) {
      body.replaceChildren.apply(body, queues.map(function (q) { return rows.get(q.name) || queueRow(q); }));
    }
    document.getElementById("queues-empty").classList.toggle("hidden", queues.length > 0);
    body.querySelectorAll("tr[data-queue]").forEach(function (tr, i) {
      tr.querySelector(".depth").textContent = fmt.format(queues[i].depth);
      tr.querySelector(".age").textContent = ageText(queues[i].oldest_age);
      drawSpark(tr.querySelector("canvas"), history.queues[queues[i].name] || [], COLORS[colorOf[queues[i].name] || 0]);
    });
  }

  function sized(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx: ctx, w: w, h: h };
  }

  function path(ctx, values, x, y) {
    ctx.beginPath();
    values.forEach(function (v, i) { if (i) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v)); });
  }

  function span() {
    const now = serverNow();
    const seen = history.t.length ? now - history.t[0] : 0;
    return Math.min(MAX_WINDOW_S, Math.max(MIN_WINDOW_S, Math.ceil(seen / 30) * 30));
  }

  function drawSpark(canvas, values, color) {
    if (!canvas) return;
    const c = sized(canvas);
    if (values.length < 2) return;
    const now = serverNow(), window_s = span();
    const max = Math.max(1, Math.max.apply(null, values));
    const x = function (i) { return c.w * (1 - (now - history.t[i]) / window_s); };
    const y = function (v) { return c.h - 2 - (c.h - 4) * (v / max); };
    path(c.ctx, values, x, y);
    c.ctx.strokeStyle = color;
    c.ctx.lineWidth = 1.5;
    c.ctx.stroke();
    c.ctx.lineTo(x(values.length - 1), c.h);
    c.ctx.lineTo(x(0), c.h);
    c.ctx.globalAlpha = 0.12;
    c.ctx.fillStyle = color;
    c.ctx.fill();
    c.ctx.globalAlpha = 1;
  }

  function tickLabel(ago) {
    if (!ago) return "now";
    if (ago < 60) return "−" + ago + " s";
    return ago % 60 ? "−" + Math.floor(ago / 60) + ":" + String(ago % 60).padStart(2, "0") : "−" + ago / 60 + " min";
  }

  function niceMax(v) {
    if (v <= 5) return 5;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart() {
    const canvas = document.getElementById("depth-chart");
    const c = sized(canvas);
    const left = 44, right = 10, top = 8, bottom = 22;
    const names = Object.keys(history.queues);
    let max = 0;
    names.forEach(function (n) { max = Math.max(max, Math.max.apply(null, history.queues[n].concat([0]))); });
    max = niceMax(max);
    const now = serverNow(), window_s = span();
    const pw = c.w - left - right, ph = c.h - top - bottom;
    const x = function (i) { return left + pw * (1 - (now - history.t[i]) / window_s); };
    const y = function (v) { return top + ph * (1 - v / max); };
    const ctx = c.ctx;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7385";
    ctx.strokeStyle = "#eef0f4";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4, yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(c.w - right, yy); ctx.stroke();
      ctx.fillText(fmt.format(Math.round(v)), left - 8, yy);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = window_s <= 60 ? 10 : window_s <= 150 ? 30 : 60;
    for (let ago = window_s - (window_s % step); ago >= 0; ago -= step) {
      const xx = left + pw * (1 - ago / window_s);
      ctx.fillText(tickLabel(ago), Math.min(xx, c.w - right - 12), c.h - bottom + 6);
    }
    setText("chart-window", window_s % 60 ? window_s + " seconds" : window_s / 60 === 1 ? "minute" : window_s / 60 + " minutes");
    ctx.save();
    ctx.beginPath(); ctx.rect(left, 0, pw, c.h); ctx.clip();
    names.forEach(function (n) {
      if (history.t.length < 2) return;
      path(ctx, history.queues[n], x, y);
      ctx.strokeStyle = COLORS[colorOf[n] || 0];
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
    });
    ctx.restore();
    const legend = document.getElementById("depth-legend");
    legend.replaceChildren.apply(legend, names.map(function (n) {
      const s = document.createElement("span");
      s.className = "c" + (colorOf[n] || 0);
      s.textContent = n;
      return s;
    }));
  }

  function render(o) {
    setText("stat-queued", fmt.format(o.queued));
    setText("stat-queues", String(o.queues.length));
    setText("stat-processed", fmt.format(o.processed));
    setText("stat-failed", fmt.format(o.failed));
    document.getElementById("stat-failed").classList.toggle("bad-text", o.failed > 0);
    setText("stat-failed-store", fmt.format(o.failed_store));
    setText("rate-processed", rate(o.rates.processed));
    setText("rate-failed", rate(o.rates.failed));
    setText("stat-busy", String(o.workers.busy));
    setText("stat-idle", String(o.workers.idle));
    setText("stat-workers", String(o.workers.total));
    setText("stat-stale", String(o.workers.stale));
    document.getElementById("stat-stale-wrap").classList.toggle("hidden", !o.workers.stale);
    setText("stat-delayed", fmt.format(o.delayed));
    const badge = document.getElementById("nav-failed");
    if (badge) {
      badge.textContent = fmt.format(o.failed_store);
      badge.classList.toggle("hidden", !o.failed_store);
    }
    assignColors(Object.keys(history.queues).sort());
    renderQueues(o.queues);
    renderLimits(o.limits || []);
    drawChart();
  }

  // the concurrency limits' rows the page was rendered with (a new limiter shows on reload)
  function renderLimits(limits) {
    limits.forEach(function (lim) {
      const tr = document.querySelector('#limits-table tr[data-limiter="' + CSS.escape(lim.name) + '"]');
      if (!tr) return;
      tr.querySelector(".running").textContent = String(lim.running);
      tr.querySelector(".parked").textContent = fmt.format(lim.parked);
      const age = tr.querySelector(".age");
      if (age) age.textContent = ageText(lim.oldest_parked_age);
      tr.querySelector(".holders").textContent = Object.keys(lim.holders).join(", ");
    });
  }

  function live(ok) {
    const el = document.getElementById("live");
    el.classList.toggle("ok", ok);
    el.classList.toggle("down", !ok);
    setText("live-text", ok ? "live" : "connection lost, retrying");
  }

  async function poll() {
    try {
      const url = lastT === null ? api : api + "?since=" + encodeURIComponent(lastT);
      const resp = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const o = await resp.json();
      skew = o.time - Date.now() / 1000;
      merge(o.history);
      if (history.t.length) lastT = history.t[history.t.length - 1];
      render(o);
      root.dataset.updated = String(o.time);
      live(true);
    } catch (err) {
      live(false);
    } finally {
      window.setTimeout(poll, every);
    }
  }

  window.addEventListener("resize", drawChart);
  poll();
})();
