// octseg review: plain JS, no build step. Talks to the server in octseg/review/server.py.
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const COLORS = {
  1: [0, 220, 255, 40], 2: [255, 140, 0, 130], 3: [255, 255, 255, 255], 4: [90, 90, 255, 90],
  5: [120, 255, 140, 110], 6: [255, 235, 0, 120],
};
const $ = (id) => document.getElementById(id);

const app = {
  pid: null, meta: null, frame: 0, info: null, angle: 0, pixels: new Map(), infos: new Map(), long: null,
  busy: 0, timings: { frame: [], edit: [] }, drag: null, points: null, error: null,
};
window.app = app;

// ------------------------------------------------------------------ server
async function api(path, opts = {}) {
  app.busy++;
  try {
    const init = { ...opts, headers: { "X-Octseg-Token": TOKEN, ...(opts.headers || {}) } };
    if (opts.json !== undefined) {
      init.method = "POST"; init.body = JSON.stringify(opts.json);
      init.headers["Content-Type"] = "application/json";
    }
    const r = await fetch(path, init);
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
      throw new Error(`${r.status}: ${msg}`);
    }
    return opts.raw ? r : (opts.bytes ? new Uint8Array(await r.arrayBuffer()) : r.json());
  } finally { app.busy--; }
}
function status(msg, isError = false) {
  $("status").textContent = msg; $("status").className = isError ? "error" : "";
  if (isError) app.error = msg;
}
const guard = (fn) => async (...a) => { try { await fn(...a); } catch (e) { status(e.message, true); } };

// ------------------------------------------------------------------ cohort
async function loadCohort() {
  const c = await api("/api/cohort");
  const box = $("cohort"); box.innerHTML = "";
  for (const pb of c.pullbacks) {
    const b = document.createElement("button");
    b.textContent = pb.id + (pb.status !== "done" ? ` (${pb.status})` : "");
    b.dataset.pid = pb.id; b.title = pb.error || "";
    if (pb.status === "error" || pb.status === "failed") b.classList.add("bad");
    b.onclick = guard(() => openPullback(pb.id));
    box.appendChild(b);
  }
  if (c.pullbacks.length) await openPullback(c.pullbacks[0].id);
}

async function openPullback(pid) {
  status(`opening ${pid} ...`);
  for (const b of $("cohort").children) b.classList.toggle("active", b.dataset.pid === pid);
  let meta;
  try { meta = await api(`/api/pb/${encodeURIComponent(pid)}`); } catch (e) {
    const b = [...$("cohort").children].find((x) => x.dataset.pid === pid);
    if (b) { b.classList.add("bad"); b.title = e.message; }
    throw e;
  }
  app.pid = pid; app.meta = meta; app.pixels = new Map(); app.infos = new Map(); app.long = null;
  const d = meta.display; $("xs").width = d.width; $("xs").height = d.height;
  app.off = document.createElement("canvas"); app.off.width = d.width; app.off.height = d.height;
  await loadLongitudinal();
  await goto(Math.min(app.frame, meta.n_frames - 1), true);
  status(`${pid}: ${meta.n_frames} frames, ${meta.space}`);
}

// ------------------------------------------------------------------ frames
function pb() { return `/api/pb/${encodeURIComponent(app.pid)}`; }
function pixels(f) {
  if (!app.pixels.has(f)) {
    const p = api(`${pb()}/frame/${f}/pixels`, { bytes: true });
    p.catch(() => app.pixels.delete(f));
    app.pixels.set(f, p);
    if (app.pixels.size > 24) app.pixels.delete(app.pixels.keys().next().value);
  }
  return app.pixels.get(f);
}

function frameInfo(f) {
  if (!app.infos.has(f)) {
    const p = api(`${pb()}/frame/${f}`);
    p.catch(() => app.infos.delete(f));
    app.infos.set(f, p);
    if (app.infos.size > 24) app.infos.delete(app.infos.keys().next().value);
  }
  return app.infos.get(f);
}

async function goto(f, force = false) {
  if (!app.meta) return;
  f = Math.max(0, Math.min(app.meta.n_frames - 1, f));
  if (f === app.frame && !force && app.info) return;
  const t0 = performance.now();
  app.frame = f;
  if (force) app.infos.delete(f);
  const [px, info] = await Promise.all([pixels(f), frameInfo(f)]);
  if (app.frame !== f) return; // a later step won
  app.info = info; app.points = info.control_points.map((p) => p.slice());
  compose(px);
  redraw();
  app.timings.frame.push(performance.now() - t0);
  for (const n of [f + 1, f - 1, f + 2]) if (n >= 0 && n < app.meta.n_frames) { pixels(n); frameInfo(n); }
}

function tint(gray, labels, n) {
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    let g = gray[i], r = g, gg = g, b = g;
    const c = COLORS[labels[i]];
    if (c) { const a = c[3] / 255; r = g + (c[0] - g) * a; gg = g + (c[1] - g) * a; b = g + (c[2] - g) * a; }
    out[j] = r; out[j + 1] = gg; out[j + 2] = b; out[j + 3] = 255;
  }
  return out;
}

function compose(px) {
  const { width: w, height: h } = app.meta.display; const n = w * h;
  const img = new ImageData(tint(px.subarray(0, n), px.subarray(n, 2 * n), n), w, h);
  app.off.getContext("2d").putImageData(img, 0, 0);
}

const toPx = ([x, y]) => [app.meta.display.cx + x / app.meta.display.dps, app.meta.display.cy + y / app.meta.display.dps];
const toMm = ([c, r]) => [(c - app.meta.display.cx) * app.meta.display.dps, (r - app.meta.display.cy) * app.meta.display.dps];

function redraw() {
  const cv = $("xs"), ctx = cv.getContext("2d"), info = app.info;
  ctx.drawImage(app.off, 0, 0);
  const s = cv.width / 512;
  // longitudinal cut line
  const a = (app.angle * Math.PI) / 180, R = cv.width;
  const [cx, cy] = toPx([0, 0]);
  ctx.strokeStyle = "rgba(255,255,0,0.5)"; ctx.lineWidth = 1 * s; ctx.setLineDash([6 * s, 6 * s]);
  ctx.beginPath(); ctx.moveTo(cx - R * Math.cos(a), cy - R * Math.sin(a)); ctx.lineTo(cx + R * Math.cos(a), cy + R * Math.sin(a)); ctx.stroke();
  ctx.setLineDash([]);
  // lumen contour (the server's spline; a polygon while dragging)
  const curve = app.drag && app.drag.kind === "lumen" ? app.points : info.contour;
  ctx.strokeStyle = "#0ff"; ctx.lineWidth = 1.5 * s; ctx.beginPath();
  curve.forEach((p, i) => { const [u, v] = toPx(p); i ? ctx.lineTo(u, v) : ctx.moveTo(u, v); });
  ctx.closePath(); ctx.stroke();
  ctx.fillStyle = "#0ff";
  for (const p of app.points) { const [u, v] = toPx(p); ctx.beginPath(); ctx.arc(u, v, 3.5 * s, 0, 2 * Math.PI); ctx.fill(); }
  ctx.strokeStyle = "#f44"; ctx.lineWidth = 1.5 * s;
  for (const p of info.struts) { const [u, v] = toPx(p); ctx.beginPath(); ctx.arc(u, v, 5 * s, 0, 2 * Math.PI); ctx.stroke(); }
  if (info.caliper && !app.drag) { // where the maximum calcium thickness is measured
    const [[u0, v0], [u1, v1]] = info.caliper.map(toPx);
    ctx.strokeStyle = ctx.fillStyle = "#fff"; ctx.lineWidth = 1.5 * s;
    ctx.beginPath(); ctx.moveTo(u0, v0); ctx.lineTo(u1, v1); ctx.stroke();
    for (const [u, v] of [[u0, v0], [u1, v1]]) { ctx.beginPath(); ctx.arc(u, v, 2.5 * s, 0, 2 * Math.PI); ctx.fill(); }
  }
  if (app.drag && app.drag.stroke) {
    ctx.fillStyle = app.drag.kind === "erase" ? "rgba(255,255,255,0.3)" : "rgba(255,140,0,0.5)";
    const r = app.drag.radius / app.meta.display.dps;
    for (const p of app.drag.stroke) { const [u, v] = toPx(p); ctx.beginPath(); ctx.arc(u, v, r, 0, 2 * Math.PI); ctx.fill(); }
  }
  drawNumbers(); drawLongitudinal(); drawPlots();
}

function fmt(v, d = 2) { return v === null || v === undefined ? "—" : Number(v).toFixed(d); }
function drawNumbers() {
  const r = app.info.row || {}, i = app.info;
  $("frame-label").textContent = `${app.pid} · frame ${app.frame + 1}/${app.meta.n_frames}` +
    (i.reviewed ? " · reviewed" : "") + (i.edited ? " · edited" : "") + (i.labelled ? "" : " · unlabelled");
  $("reviewed").checked = i.reviewed;
  const rows = [
    ["lumen area (mm²)", fmt(r.lumen_area_mm2)], ["mean / min / max diameter (mm)",
      `${fmt(r.lumen_mean_diameter_mm)} / ${fmt(r.lumen_min_diameter_mm)} / ${fmt(r.lumen_max_diameter_mm)}`],
    ["calcium arc (°)", fmt(r.calcium_arc_deg, 0)], ["calcium thickness / depth (mm)",
      `${fmt(r.calcium_max_thickness_mm)} / ${fmt(r.calcium_min_depth_mm)}`],
    ["calcium area (mm²)", fmt(r.calcium_area_mm2)], ["struts (malapposed)", `${r.n_struts ?? "—"} (${r.n_malapposed ?? "—"})`],
    ["stent area (mm²)", fmt(r.stent_area_mm2)], ["max malapposition (mm)", fmt(r.max_malapposition_mm)],
    ["lipid arc (°)", fmt(r.lipid_arc_deg, 0)], ["min cap thickness (µm)", fmt(r.cap_min_thickness_um, 0)],
    ["TCFA", r.tcfa === null || r.tcfa === undefined ? "—" : (r.tcfa ? "yes" : "no")],
  ];
  $("numbers").innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
  app.meta.rows[app.frame] = app.info.row;
}

// ------------------------------------------------------------------ longitudinal and plots
async function loadLongitudinal() {
  const r = await api(`${pb()}/long?angle=${app.angle}`, { raw: true });
  const buf = new Uint8Array(await r.arrayBuffer());
  const n = +r.headers.get("X-Samples"), f = +r.headers.get("X-Frames");
  const c = document.createElement("canvas"); c.width = f; c.height = n;
  c.getContext("2d").putImageData(new ImageData(tint(buf.subarray(0, n * f), buf.subarray(n * f), n * f), f, n), 0, 0);
  app.long = c;
}
function drawLongitudinal() {
  const cv = $("long"), ctx = cv.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cv.width, cv.height);
  if (app.long) { ctx.imageSmoothingEnabled = false; ctx.drawImage(app.long, 0, 0, cv.width, cv.height); }
  const x = ((app.frame + 0.5) / app.meta.n_frames) * cv.width;
  ctx.strokeStyle = "#ff0"; ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, cv.height); ctx.stroke();
}
function drawPlots() {
  const cv = $("plots"), ctx = cv.getContext("2d"), rows = app.meta.rows, F = app.meta.n_frames;
  ctx.fillStyle = "#0b0d10"; ctx.fillRect(0, 0, cv.width, cv.height);
  const series = [["lumen area mm²", "lumen_area_mm2", "#0ff"], ["calcium arc °", "calcium_arc_deg", "#f90"],
    ["stent area mm²", "stent_area_mm2", "#5e5"], ["lipid arc °", "lipid_arc_deg", "#fe0"]];
  const hh = cv.height / series.length;
  series.forEach(([name, key, col], k) => {
    const vals = rows.map((r) => (r && r[key] !== null && r[key] !== undefined ? r[key] : null));
    const ok = vals.filter((v) => v !== null), top = k * hh;
    const hi = ok.length ? Math.max(...ok) * 1.1 || 1 : 1;
    ctx.fillStyle = "#889"; ctx.fillText(`${name} (max ${ok.length ? fmt(hi / 1.1, 1) : "—"})`, 4, top + 11);
    ctx.strokeStyle = col; ctx.beginPath(); let pen = false;
    vals.forEach((v, f) => {
      if (v === null) { pen = false; return; }
      const x = ((f + 0.5) / F) * cv.width, y = top + hh - 2 - (v / hi) * (hh - 14);
      pen ? ctx.lineTo(x, y) : ctx.moveTo(x, y); pen = true;
    });
    ctx.stroke();
  });
  ctx.fillStyle = "#7f7";
  for (const f of app.meta.reviewed || []) ctx.fillRect(((f + 0.5) / F) * cv.width - 1, cv.height - 4, 2, 4);
  const x = ((app.frame + 0.5) / F) * cv.width;
  ctx.strokeStyle = "#ff0"; ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, cv.height); ctx.stroke();
}

// ------------------------------------------------------------------ editing
const tool = () => document.querySelector("input[name=tool]:checked").value;
function eventMm(ev) {
  const cv = $("xs"), b = cv.getBoundingClientRect();
  return toMm([((ev.clientX - b.left) * cv.width) / b.width, ((ev.clientY - b.top) * cv.height) / b.height]);
}
function nearestPoint(list, p, tolPx) {
  let best = -1, bd = Infinity;
  list.forEach((q, i) => { const d = Math.hypot(q[0] - p[0], q[1] - p[1]); if (d < bd) { bd = d; best = i; } });
  const cv = $("xs"), scale = cv.width / cv.getBoundingClientRect().width;
  return bd / app.meta.display.dps <= tolPx * scale ? best : -1;
}

async function sendEdit(op) {
  const t0 = performance.now();
  const f = app.frame;
  const info = await api(`${pb()}/frame/${f}/edit`, { json: op });
  app.timings.edit.push(performance.now() - t0);
  await afterChange(info);
}
async function afterChange(info) {
  app.pixels.delete(info.frame);
  app.infos.set(info.frame, Promise.resolve(info));
  if (!app.meta.reviewed.includes(info.frame) && info.reviewed) app.meta.reviewed.push(info.frame);
  if (!info.reviewed) app.meta.reviewed = app.meta.reviewed.filter((f) => f !== info.frame);
  app.meta.rows[info.frame] = info.row; app.meta.jumps = info.jumps;
  if (info.frame !== app.frame) { app.frame = info.frame; }
  app.info = info; app.points = info.control_points.map((p) => p.slice());
  compose(await pixels(info.frame));
  redraw();
  loadLongitudinal().then(drawLongitudinal).catch((e) => status(e.message, true));
  status(`frame ${info.frame + 1}: lumen area ${fmt(info.row && info.row.lumen_area_mm2)} mm²`);
}

function onDown(ev) {
  if (!app.info) return;
  const p = eventMm(ev), t = tool();
  if (t === "lumen") {
    const i = nearestPoint(app.points, p, 10);
    if (i >= 0) app.drag = { kind: "lumen", index: i };
  } else if (t === "paint" || t === "erase") {
    app.drag = { kind: t, stroke: [p], radius: Math.max(0.01, +$("brush").value || 0.15) };
  } else if (t === "strut_move") {
    const i = nearestPoint(app.info.struts, p, 12);
    if (i >= 0) app.drag = { kind: "strut_move", src: app.info.struts[i] };
  } else if (t === "guidewire") {
    app.drag = { kind: "guidewire", start: p };
  }
  redraw();
}
function onMove(ev) {
  if (!app.drag) return;
  const p = eventMm(ev), d = app.drag;
  if (d.kind === "lumen") app.points[d.index] = p;
  else if (d.stroke) {
    const last = d.stroke[d.stroke.length - 1];
    if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= d.radius / 3) d.stroke.push(p);
  }
  redraw();
}
const deg = (p) => ((Math.atan2(p[1], p[0]) * 180) / Math.PI + 360) % 360;
const onUp = guard(async (ev) => {
  const d = app.drag; app.drag = null;
  const p = eventMm(ev), t = tool();
  if (d && d.kind === "lumen") return sendEdit({ op: "lumen", points: app.points });
  if (d && d.stroke)
    return sendEdit({ op: "brush", mode: d.kind, radius_mm: d.radius, points: d.stroke, class: $("brush-class").value });
  if (d && d.kind === "strut_move") return sendEdit({ op: "strut_move", src: d.src, dst: p });
  if (d && d.kind === "guidewire")
    return sendEdit({ op: "guidewire", start_deg: deg(d.start), end_deg: deg(p), radius_mm: Math.hypot(...d.start) });
  if (t === "strut_add") return sendEdit({ op: "strut_add", x: p[0], y: p[1] });
  if (t === "strut_delete") {
    const i = nearestPoint(app.info.struts, p, 12);
    if (i < 0) return status("no strut there", true);
    const s = app.info.struts[i];
    return sendEdit({ op: "strut_delete", x: s[0], y: s[1] });
  }
  redraw();
});

const undoRedo = (which) => guard(async () => afterChange(await api(`${pb()}/${which}`, { json: {} })));
const toggleReviewed = guard(async (value) => afterChange(await api(`${pb()}/frame/${app.frame}/reviewed`, { json: { reviewed: value } })));
const save = guard(async () => {
  const r = await api(`${pb()}/save`, { json: {} });
  app.saved = r;
  status(`saved ${r.frames_reviewed.length} reviewed frames (${r.frames_edited.length} edited) to ${r.folder}`);
});

// ------------------------------------------------------------------ wiring
function wire() {
  const xs = $("xs");
  xs.addEventListener("mousedown", onDown);
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", (ev) => { if (app.drag || ev.target === xs) onUp(ev); });
  const wheel = (ev) => { ev.preventDefault(); guard(goto)(app.frame + (ev.deltaY > 0 ? 1 : -1)); };
  xs.addEventListener("wheel", wheel, { passive: false });
  $("long").addEventListener("wheel", wheel, { passive: false });
  $("long").addEventListener("click", (ev) => {
    const b = $("long").getBoundingClientRect();
    guard(goto)(Math.floor(((ev.clientX - b.left) / b.width) * app.meta.n_frames));
  });
  window.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" && !["checkbox", "radio"].includes(ev.target.type)) return;
    if (ev.key === "ArrowRight") guard(goto)(app.frame + 1);
    else if (ev.key === "ArrowLeft") guard(goto)(app.frame - 1);
    else if (ev.key === "ArrowUp") guard(goto)(app.frame + 10);
    else if (ev.key === "ArrowDown") guard(goto)(app.frame - 10);
    else if (ev.key === "r" || ev.key === "R") toggleReviewed(!app.info.reviewed);
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") undoRedo("undo")();
    else if ((ev.ctrlKey || ev.metaKey) && ev.key === "y") undoRedo("redo")();
    else return;
    ev.preventDefault();
  });
  $("undo").onclick = undoRedo("undo"); $("redo").onclick = undoRedo("redo");
  $("reviewed").onchange = (ev) => toggleReviewed(ev.target.checked);
  $("save").onclick = save;
  for (const b of document.querySelectorAll("[data-jump]"))
    b.onclick = () => { const f = app.meta && app.meta.jumps[b.dataset.jump]; if (f !== null && f !== undefined) guard(goto)(f); else status(`no ${b.dataset.jump} in this pullback`, true); };
  $("angle").oninput = guard(async (ev) => {
    app.angle = +ev.target.value; $("angle-val").textContent = app.angle;
    await loadLongitudinal(); redraw();
  });
}

wire();
guard(loadCohort)();
