// The emulator console: polls /console/state every second and updates the page in place.
// Plain DOM, no framework: rows are kept per channel and only changed cells are rewritten,
// so a thousand channels stay cheap to refresh.
"use strict";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"));

function set(el, text) {
  text = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== text) el.textContent = text;
}

function cell(tr, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// Rebuilds a small table body (requests, tables) from rows of cell specs.
function fill(tbody, rows) {
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of r) {
      const td = cell(tr, c.cls);
      if (c.html !== undefined) td.append(...c.html);
      else td.textContent = c.text === null || c.text === undefined ? "" : String(c.text);
    }
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
}

const channels = new Map(); // key -> {tr, td: {...}, rows, rate}
let order = "";
let lastPoll = 0; // the server's clock (ms) at the previous poll

function channelRow(pipe, name) {
  const tr = document.createElement("tr");
  tr.dataset.pipe = pipe;
  tr.dataset.channel = name;
  const td = {
    pipe: cell(tr), name: cell(tr), status: cell(tr), token: cell(tr, "token"),
    rows: cell(tr, "n rows"), rate: cell(tr, "n rate"), latency: cell(tr, "n latency"),
    pending: cell(tr, "n"), fenced: cell(tr, "n fenced"), errors: cell(tr, "n errors"),
    error: cell(tr, "err"),
  };
  td.pipe.textContent = pipe;
  td.name.textContent = name;
  return { tr, td, rows: null, rate: 0 };
}

function applyFilter() {
  const f = $("filter").value.trim().toLowerCase();
  let shown = 0;
  for (const [key, c] of channels) {
    const hide = f !== "" && !key.toLowerCase().includes(f);
    if (c.tr.hidden !== hide) c.tr.hidden = hide;
    if (!hide) shown++;
  }
  set($("channel-shown"), f ? `${shown} of ${channels.size} shown` : capped);
}

// "first 1,000 of N" when the server sent only the first channels (in name order).
let capped = "";

function renderChannels(state, dt) {
  const total = state.channels_total ?? state.channels.length;
  const note = total > state.channels.length ? `first ${fmt(state.channels.length)} of ${fmt(total)}` : "";
  if (note !== capped) { capped = note; applyFilter(); }
  const seen = new Set();
  let totalRows = 0, totalRate = 0, totalErrors = 0;
  const keys = [];
  for (const [pipe, name, status, token, rows, errors, lastError, latency, pending, fenced] of state.channels) {
    const key = pipe + "/" + name;
    keys.push(key);
    seen.add(key);
    let c = channels.get(key);
    if (!c) { c = channelRow(pipe, name); channels.set(key, c); }
    if (c.rows !== null && dt > 0) {
      const now = Math.max(0, rows - c.rows) / dt;
      c.rate = c.rate === 0 ? now : 0.5 * c.rate + 0.5 * now;
      if (c.rate < 0.05) c.rate = 0;
    }
    c.rows = rows;
    totalRows += rows; totalRate += c.rate; totalErrors += errors;
    const t = c.td;
    set(t.status, status);
    const cls = status === "SUCCESS" ? "st-SUCCESS" : "st-bad";
    if (t.status.className !== cls) t.status.className = cls;
    set(t.token, token);
    if (c.tr.dataset.token !== (token ?? "")) c.tr.dataset.token = token ?? "";
    set(t.rows, fmt(rows));
    if (c.tr.dataset.rows !== String(rows)) c.tr.dataset.rows = String(rows);
    set(t.rate, fmt(Math.round(c.rate)));
    set(t.latency, latency === null ? "" : latency.toFixed(1));
    set(t.pending, pending ? fmt(pending) : "");
    set(t.errors, errors ? fmt(errors) : "");
    if (c.tr.dataset.errors !== String(errors)) c.tr.dataset.errors = String(errors);
    // Appends refused because another open took the channel from their writer.
    set(t.fenced, fenced ? fmt(fenced) : "");
    if (c.tr.dataset.fenced !== String(fenced)) c.tr.dataset.fenced = String(fenced);
    set(t.error, lastError);
  }
  for (const key of [...channels.keys()]) {
    if (!seen.has(key)) { channels.get(key).tr.remove(); channels.delete(key); }
  }
  const newOrder = keys.join("\n");
  if (newOrder !== order) {
    const frag = document.createDocumentFragment();
    for (const k of keys) frag.appendChild(channels.get(k).tr);
    $("channels").replaceChildren(frag);
    order = newOrder;
    applyFilter();
  }
  set($("channel-count"), fmt(total));
  set($("rows-total"), fmt(totalRows + (state.sink_rows || 0)));
  set($("rows-rate"), fmt(Math.round(totalRate)));
  set($("error-total"), fmt(totalErrors));
}

function renderTables(state) {
  const pipesOf = {};
  for (const [pipe, table] of state.pipes) (pipesOf[table] = pipesOf[table] || []).push(pipe.split(".").pop());
  fill($("tables"), state.tables.map(([name, rows]) => [
    { text: name }, { text: fmt(rows), cls: "n" }, { text: (pipesOf[name] || []).join(", "), cls: "muted" },
  ]));
  set($("table-count"), `${state.tables.length} tables, ${state.pipes.length} pipes`);
}

function renderRequests(state) {
  fill($("requests"), state.requests.map(([ts, method, endpoint, channel, status, error, faults, ms]) => {
    const d = new Date(ts);
    const time = d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
    const tags = faults.map((f) => { const s = document.createElement("span"); s.className = "fault"; s.textContent = f; return s; });
    return [
      { text: time, cls: "muted" }, { text: `${method} ${endpoint}` }, { text: channel },
      { text: status === 0 ? "dropped" : status + (error ? " " + error : ""), cls: "n s" + String(status)[0] },
      { html: tags }, { text: ms.toFixed(2), cls: "n" },
    ];
  }));
}

const previewBoxes = new Map(); // table -> {box, sig}
function renderPreviews(state) {
  const root = $("previews");
  for (const [name, p] of Object.entries(state.previews)) {
    let b = previewBoxes.get(name);
    if (!b) {
      const box = document.createElement("div");
      box.className = "preview";
      box.dataset.table = name;
      box.innerHTML = "<h3></h3><div class='scroll'><table><thead><tr></tr></thead><tbody></tbody></table></div>";
      box.querySelector("h3").textContent = name;
      root.appendChild(box);
      b = { box, sig: "" };
      previewBoxes.set(name, b);
    }
    const sig = JSON.stringify(p);
    if (sig === b.sig) continue;
    b.sig = sig;
    const head = b.box.querySelector("thead tr");
    head.replaceChildren(...p.columns.map((c) => { const th = document.createElement("th"); th.textContent = c; return th; }));
    fill(b.box.querySelector("tbody"), p.rows.length
      ? p.rows.map((r) => r.map((v, i) => ({ text: v === null ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v), cls: p.numeric && p.numeric[i] ? "n" : "" })))
      : [[{ text: "no rows yet", cls: "muted" }]]);
  }
}

async function poll() {
  try {
    const res = await fetch("/console/state", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const state = await res.json();
    // Rates from the server's clock: right under a throttled tab or a headless browser's
    // virtual time too.
    const dt = lastPoll ? (state.now_ms - lastPoll) / 1000 : 0;
    lastPoll = state.now_ms;
    const t0 = performance.now();
    renderChannels(state, dt);
    renderTables(state);
    renderRequests(state);
    renderPreviews(state);
    set($("request-total"), fmt(state.requests_total));
    set($("fault-total"), fmt(state.faults_fired));
    set($("fenced-total"), fmt(state.fenced_appends));
    set($("meta"), `v${state.version} · ${state.mode} mode · commit delay ${state.commit_delay_ms} ms · up ${state.uptime_s} s`);
    const live = $("live");
    set(live, "live");
    live.className = "ok";
    document.body.dataset.updated = String(state.now_ms);
    // How long this update took in the page (a diagnostic: 1,000 channels should stay cheap).
    document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
  } catch (e) {
    set($("live"), "disconnected");
    $("live").className = "down";
  }
  setTimeout(poll, POLL_MS);
}

$("filter").addEventListener("input", applyFilter);
poll();
