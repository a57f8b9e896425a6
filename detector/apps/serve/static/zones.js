// The camera page's zone editor: draw, move, split and delete polygons on the camera's picture, with the
// mouse or the keyboard; every change is checked by the server as `config check` would (problems shown at the
// shape) and previewed on the picture's detections; Save writes the camera file back.
"use strict";
(() => {
  const root = document.getElementById("camera");
  if (!root) return;
  const id = root.dataset.id, api = `/api/cameras/${encodeURIComponent(id)}`;
  const $ = (sel) => document.querySelector(sel);
  const img = $("#frame"), svg = $("#overlay"), stage = $("#stage"), form = $("#zone-form");
  const NS = "http://www.w3.org/2000/svg", DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const COLOURS = {prohibited: "#e53935", allowed: "#43a047", ignore: "#9e9e9e"};
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  let zones = [], original = [], dirty = [], problems = {}, dets = [], kinds = [];
  let selected = -1, vertex = -1, drawing = null, splitting = null, drag = null, size = [1, 1], previewTimer = 0;

  // -- coordinates: zones live in fractions of the picture ---------------------------------------------------
  function toFractions(zone) {
    const pts = zone.polygon, big = pts.some(([x, y]) => x > 1 || y > 1);
    if (zone.units === "pixel" || (zone.units !== "fraction" && big)) {
      return {...zone, units: undefined, polygon: pts.map(([x, y]) => [x / size[0], y / size[1]])};
    }
    return {...zone, units: undefined};
  }
  const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
  function point(e) {
    const r = svg.getBoundingClientRect();
    return [round((e.clientX - r.left) / r.width), round((e.clientY - r.top) / r.height)];
  }

  // -- drawing -------------------------------------------------------------------------------------------------
  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    (parent || svg).appendChild(node);
    return node;
  }
  const px = ([x, y]) => `${x * size[0]},${y * size[1]}`;
  function render() {
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`);
    const w = Math.max(2, size[0] / 400);
    for (const d of dets) {
      const [x1, y1, x2, y2] = d.box;
      const box = el("rect", {x: x1, y: y1, width: x2 - x1, height: y2 - y1, fill: "none",
        stroke: d.violation ? "#ff1744" : "#cfd8dc", "stroke-width": w, "stroke-dasharray": d.violation ? "" : "6 4"});
      el("title", {}, box).textContent = `${d.kind} ${d.confidence}: ${d.violation ? "a violation" : "dropped"}, ${d.why}`;
    }
    zones.forEach((z, i) => {
      const colour = COLOURS[z.type] || "#fff", bad = problems[i] !== undefined;
      const poly = el("polygon", {points: z.polygon.map(px).join(" "), fill: colour, "fill-opacity": i === selected ? .35 : .2,
        stroke: bad ? "#ffea00" : colour, "stroke-width": i === selected ? 2 * w : w, "data-zone": i});
      el("title", {}, poly).textContent = bad ? `${z.id}: ${problems[i]}` : `${z.type}: ${z.id}`;
      const [lx, ly] = z.polygon[0];
      const label = el("text", {x: lx * size[0] + 4, y: ly * size[1] + size[0] / 45, fill: bad ? "#ffea00" : "#fff",
        "font-size": size[0] / 55, stroke: "#000", "stroke-width": .6, "paint-order": "stroke"});
      label.textContent = bad ? `⚠ ${z.id}: ${problems[i]}` : `${z.type}: ${z.id}`;
      if (i === selected) z.polygon.forEach((p, k) => el("circle", {cx: p[0] * size[0], cy: p[1] * size[1],
        r: (k === vertex ? 3 : 2) * w, fill: k === vertex ? "#ffea00" : "#fff", stroke: "#000", "data-vertex": k}));
    });
    if (drawing) {
      el("polyline", {points: drawing.map(px).join(" "), fill: "none", stroke: "#ffea00", "stroke-width": w});
      drawing.forEach((p) => el("circle", {cx: p[0] * size[0], cy: p[1] * size[1], r: 2 * w, fill: "#ffea00"}));
    }
    if (splitting && splitting.length) el("circle", {cx: splitting[0][0] * size[0], cy: splitting[0][1] * size[1],
      r: 3 * w, fill: "#00e5ff"});
    listZones();
  }
  function listZones() {
    const list = $("#zones");
    list.replaceChildren(...zones.map((z, i) => {
      const li = document.createElement("li");
      li.textContent = `${z.id} (${z.type}${z.kinds ? ": " + z.kinds.join(", ") : ""})${problems[i] ? " ⚠ " + problems[i] : ""}`;
      li.className = (i === selected ? "selected " : "") + (problems[i] ? "bad" : "");
      li.onclick = () => select(i);
      return li;
    }));
  }
  function status(text, error) { const s = $("#status"); s.textContent = text; s.className = error ? "error" : "hint"; }
  function mode(text) { $("#mode").textContent = text; }

  // -- the form ------------------------------------------------------------------------------------------------
  function checks(container, values, name) {
    container.replaceChildren(...values.map((v) => {
      const label = document.createElement("label");
      label.style.display = "inline-block";
      label.innerHTML = `<input type="checkbox" name="${name}" value="${v}"> ${v}&nbsp;`;
      return label;
    }));
  }
  function fillForm() {
    form.hidden = selected < 0;
    if (selected < 0) return;
    const z = zones[selected];
    form.elements.id.value = z.id;
    form.elements.type.value = z.type;
    form.elements.hours.value = (z.hours || []).join(", ");
    form.elements.min_dwell_s.value = z.min_dwell_s ?? "";
    form.elements.points.value = z.polygon.map(([x, y]) => `${x}, ${y}`).join("\n");
    for (const box of form.querySelectorAll('input[name="kind"]')) box.checked = (z.kinds || []).includes(box.value);
    for (const box of form.querySelectorAll('input[name="day"]')) box.checked = (z.days || []).includes(box.value);
    $("#zone-problem").textContent = problems[selected] || "";
  }
  function readForm() {
    if (selected < 0) return;
    const f = form.elements, z = {...zones[selected]};
    z.id = f.id.value.trim();
    z.type = f.type.value;
    const picked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((b) => b.value);
    z.kinds = picked("kind").length ? picked("kind") : undefined;
    z.days = picked("day").length ? picked("day") : undefined;
    const hours = f.hours.value.split(",").map((h) => h.trim()).filter(Boolean);
    z.hours = hours.length ? hours : undefined;
    z.min_dwell_s = f.min_dwell_s.value ? Number(f.min_dwell_s.value) : undefined;
    const pts = f.points.value.split("\n").map((l) => l.split(",").map(Number)).filter((p) => p.length === 2 && p.every(isFinite));
    if (pts.length) z.polygon = pts;
    change(selected, z);
  }

  // -- edits ---------------------------------------------------------------------------------------------------
  function change(i, zone) { zones[i] = zone; dirty[i] = true; render(); if (document.activeElement.form !== form) fillForm(); preview(); }
  function select(i) { selected = i; vertex = -1; render(); fillForm(); }
  function newZone() { drawing = []; splitting = null; mode("New zone: click its corners, Enter closes it, Esc cancels."); stage.focus(); render(); }
  function closeDrawing() {
    if (!drawing || drawing.length < 3) { mode("A zone needs at least 3 points."); return; }
    let n = zones.length + 1;
    while (zones.some((z) => z.id === `zone-${n}`)) n += 1;
    zones.push({id: `zone-${n}`, type: "ignore", polygon: drawing});
    original.push(null); dirty.push(true);
    drawing = null; mode("");
    select(zones.length - 1);
    preview();
  }
  function remove() {
    if (selected < 0) return;
    const z = zones[selected];
    if (vertex >= 0 && z.polygon.length > 3) {
      change(selected, {...z, polygon: z.polygon.filter((_, k) => k !== vertex)});
      vertex = Math.min(vertex, z.polygon.length - 2);
    } else {
      zones.splice(selected, 1); original.splice(selected, 1); dirty.splice(selected, 1);
      selected = -1; vertex = -1; render(); fillForm(); preview();
    }
  }
  function move(dx, dy) {
    if (selected < 0) return;
    const z = zones[selected];
    const shift = (p, k) => (vertex < 0 || k === vertex) ? [round(p[0] + dx), round(p[1] + dy)] : p;
    change(selected, {...z, polygon: z.polygon.map(shift)});
  }
  // A polygon cut by the line through a and b: each side clipped (Sutherland-Hodgman), both kept when real.
  function splitZone(a, b) {
    const z = zones[selected];
    const side = (p) => (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
    const clip = (keep) => {
      const out = [], pts = z.polygon;
      pts.forEach((p, k) => {
        const q = pts[(k + 1) % pts.length], sp = keep(side(p)), sq = keep(side(q));
        if (sp) out.push(p);
        if (sp !== sq) {
          const t = side(p) / (side(p) - side(q));
          out.push([round(p[0] + t * (q[0] - p[0])), round(p[1] + t * (q[1] - p[1]))]);
        }
      });
      return out;
    };
    const left = clip((s) => s >= 0), right = clip((s) => s < 0);
    if (left.length < 3 || right.length < 3) { mode("That line does not cross the zone."); return; }
    zones.splice(selected, 1, {...z, polygon: left}, {...z, id: `${z.id}-b`, polygon: right});
    original.splice(selected, 1, null, null); dirty.splice(selected, 1, true, true);
    mode(`Split into ${z.id} and ${z.id}-b.`); render(); fillForm(); preview();
  }

  // -- the server: preview, save ---------------------------------------------------------------------------
  function outgoing() { return zones.map((z, i) => (!dirty[i] && original[i]) ? original[i] : clean(z)); }
  function clean(z) {
    const out = {};
    for (const [k, v] of Object.entries(z)) if (v !== undefined && v !== null && k !== "units") out[k] = v;
    return out;
  }
  function source() { const v = $("#source").value; return v === "live" ? null : v; }
  function preview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      const r = await fetch(`${api}/preview`, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
        body: JSON.stringify({zones: outgoing(), uri: source(), t: Number($("#time").value)})});
      const body = await r.json();
      if (!r.ok) { status(body.detail || r.statusText, true); return; }
      problems = body.problems || {};
      dets = body.detections || [];
      if (body.error) status(body.error, true);
      const list = $("#detections");
      list.replaceChildren(...(body.detections === null ? [Object.assign(document.createElement("li"), {textContent: "no model on this desk", className: "hint"})] :
        dets.map((d) => Object.assign(document.createElement("li"), {className: d.violation ? "violation" : "dropped",
          textContent: `${d.kind} ${d.confidence.toFixed(2)} — ${d.violation ? "would raise an event" : "dropped"}: ${d.why}`}))));
      if (!dets.length && body.detections) list.replaceChildren(Object.assign(document.createElement("li"), {textContent: "nothing detected", className: "hint"}));
      render(); fillForm();
    }, 250);
  }
  async function save() {
    const r = await fetch(`${api}/zones`, {method: "PUT", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}, body: JSON.stringify({zones: outgoing()})});
    const body = await r.json();
    if (!r.ok) {
      problems = body.problems || {};
      render(); fillForm();
      status(`Not saved: ${body.detail}`, true);
      return;
    }
    original = zones.map(clean); dirty = zones.map(() => false);
    status(`Saved ${body.zones} zones to ${body.saved} (the previous file: ${body.backup}).`, false);
  }

  // -- input ---------------------------------------------------------------------------------------------------
  svg.addEventListener("pointerdown", (e) => {
    const p = point(e);
    if (drawing) { drawing.push(p); render(); return; }
    if (splitting) {
      splitting.push(p);
      if (splitting.length === 2) { const [a, b] = splitting; splitting = null; splitZone(a, b); } else render();
      return;
    }
    const v = e.target.dataset.vertex, z = e.target.dataset.zone;
    if (v !== undefined) { vertex = Number(v); drag = {start: p, zone: selected, vertex: vertex, polygon: zones[selected].polygon}; }
    else if (z !== undefined) { if (Number(z) !== selected) select(Number(z)); vertex = -1; drag = {start: p, zone: selected, vertex: -1, polygon: zones[selected].polygon}; }
    else { select(-1); }
    svg.setPointerCapture(e.pointerId);
    render();
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const p = point(e), dx = p[0] - drag.start[0], dy = p[1] - drag.start[1];
    zones[drag.zone] = {...zones[drag.zone], polygon: drag.polygon.map((q, k) =>
      (drag.vertex < 0 || k === drag.vertex) ? [round(q[0] + dx), round(q[1] + dy)] : q)};
    dirty[drag.zone] = true;
    render();
  });
  svg.addEventListener("pointerup", () => { if (drag) { drag = null; fillForm(); preview(); } });
  svg.addEventListener("dblclick", () => { if (drawing) closeDrawing(); });
  form.addEventListener("change", readForm);
  $("#new").onclick = newZone;
  $("#split").onclick = () => { if (selected >= 0) { splitting = []; mode("Split: click two points of the cutting line."); } };
  $("#delete").onclick = remove;
  $("#save").onclick = save;
  document.addEventListener("keydown", (e) => {
    if (["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName)) return;
    const step = e.shiftKey ? 0.02 : 0.005;
    const keys = {
      n: newZone, s: save, x: () => $("#split").onclick(), Delete: remove, Backspace: remove,
      Enter: () => drawing && closeDrawing(),
      Escape: () => { drawing = null; splitting = null; mode(""); render(); },
      Tab: () => zones.length && select(((selected + (e.shiftKey ? -1 : 1)) % zones.length + zones.length) % zones.length),
      "]": () => { if (selected >= 0) { vertex = (vertex + 1) % zones[selected].polygon.length; render(); } },
      "[": () => { if (selected >= 0) { vertex = vertex <= 0 ? zones[selected].polygon.length - 1 : vertex - 1; render(); } },
      ArrowLeft: () => move(-step, 0), ArrowRight: () => move(step, 0), ArrowUp: () => move(0, -step), ArrowDown: () => move(0, step),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });

  // -- start ---------------------------------------------------------------------------------------------------
  function loadPicture() {
    const uri = source(), t = $("#time").value;
    img.src = `${api}/frame.jpg?${new URLSearchParams(uri ? {uri, t} : {t: 0})}&_=${Date.now()}`;
    $("#time-label").textContent = uri ? `${t} s` : "live";
  }
  img.addEventListener("load", () => {
    const first = size[0] === 1;
    size = [img.naturalWidth, img.naturalHeight];
    if (first) { zones = zones.map(toFractions); }
    render(); preview();
  });
  fetch(api, {credentials: "same-origin"}).then((r) => r.json()).then((cam) => {
    kinds = cam.kinds;
    checks($("#kinds"), kinds, "kind");
    checks($("#days"), DAYS, "day");
    zones = cam.zones; original = cam.zones.map((z) => ({...z})); dirty = zones.map(() => false);
    const sel = $("#source");
    const opts = [...(cam.live ? [["live", "live picture"]] : []), ...cam.sources.map((s) => [s.uri, s.uri.split("/").pop()])];
    sel.replaceChildren(...opts.map(([v, label]) => Object.assign(document.createElement("option"), {value: v, textContent: label})));
    const durations = Object.fromEntries(cam.sources.map((s) => [s.uri, s.duration_s || 0]));
    const range = () => { const d = durations[sel.value] || 0; $("#time").max = Math.floor(d); $("#time").disabled = !d; };
    sel.onchange = () => { range(); loadPicture(); };
    $("#time").oninput = loadPicture;
    range();
    if (!opts.length) { status("No picture: this camera has no scanned video here and no live stream.", true); render(); return; }
    loadPicture();
  });
})();
