// Boxes operators draw: a violation the model missed, on the camera page's picture (m), and an event's box set
// right on its clean frame (b). Press, drag and release on the picture; the box goes to the server in the
// picture's own pixels.
"use strict";
const Marks = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  function drawer(layer, img, onBox) {
    let start = null, rect = null;
    const at = (e) => {
      const r = layer.getBoundingClientRect();
      return [(e.clientX - r.left) / r.width * img.naturalWidth, (e.clientY - r.top) / r.height * img.naturalHeight];
    };
    const box = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    function show(b) {
      for (const [k, v] of Object.entries({x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1]})) rect.setAttribute(k, v);
    }
    layer.addEventListener("pointerdown", (e) => {
      layer.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`);
      start = at(e);
      rect = document.createElementNS(NS, "rect");
      rect.setAttribute("class", "drawn");
      rect.setAttribute("stroke-width", Math.max(2, img.naturalWidth / 300));
      layer.appendChild(rect);
      show(box(start, start));
      layer.setPointerCapture(e.pointerId);
    });
    layer.addEventListener("pointermove", (e) => { if (start) show(box(start, at(e))); });
    layer.addEventListener("pointerup", (e) => {
      if (!start) return;
      const b = box(start, at(e)).map((v) => Math.round(v * 10) / 10);
      start = null;
      onBox(b, rect);
    });
  }

  async function send(method, url, body) {
    const r = await fetch(url, {method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}, body: JSON.stringify(body)});
    const answer = await r.json();
    if (!r.ok) throw new Error(answer.detail || r.statusText);
    return answer;
  }

  // A mode: the button (or its key) shows the drawing layer over the picture; Esc or the button hides it.
  function toggle(button, layer, key, say) {
    // (an SVG element has no `hidden` property: the attribute itself)
    const hidden = () => layer.hasAttribute("hidden");
    const set = (on) => {
      layer.toggleAttribute("hidden", !on);
      button.classList.toggle("primary", on);
      if (on) say("Draw the box: press, drag, release.");
    };
    button.onclick = () => set(hidden());
    document.addEventListener("keydown", (e) => {
      if (["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === key) { e.preventDefault(); set(hidden()); } else if (e.key === "Escape") set(false);
    });
  }

  function camera(root) {
    const id = root.dataset.id, layer = document.getElementById("mark-layer"), img = document.getElementById("frame");
    const say = (text) => { document.getElementById("mark-status").textContent = text; };
    toggle(document.getElementById("mark"), layer, "m", say);
    drawer(layer, img, async (box, rect) => {
      const uri = document.getElementById("source").value;
      const kind = document.getElementById("mark-kind").value;
      try {
        const done = await send("POST", `/api/cameras/${encodeURIComponent(id)}/marks`,
          {uri: uri === "live" ? null : uri, t: Number(document.getElementById("time").value), boxes: [{kind, box}]});
        rect.dataset.mark = done.marks[0].id;
        say(`Marked a missed ${kind}; it goes into the next review export.`);
      } catch (err) { rect.remove(); say(`Not marked: ${err.message}`); }
    });
    img.addEventListener("load", () => layer.replaceChildren());  // another picture: its own marks
  }

  function event(root) {
    const id = root.dataset.id, layer = document.getElementById("fix-layer"), img = document.getElementById("clean");
    const say = (text) => { document.getElementById("fix-status").textContent = text; };
    toggle(document.getElementById("fix"), layer, "b", say);
    drawer(layer, img, async (box, rect) => {
      layer.querySelectorAll("rect.drawn").forEach((r) => { if (r !== rect) r.remove(); });
      try {
        await send("PUT", `/api/events/${encodeURIComponent(id)}/box`, {kind: document.getElementById("fix-kind").value, box});
        say("Box set right; the event is confirmed with it.");
      } catch (err) { rect.remove(); say(`Not saved: ${err.message}`); }
    });
  }

  return {camera, event};
})();
