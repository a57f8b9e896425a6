// The review desk's few scripts: keyboard review on the list and the event page, live rows, maps.
"use strict";
const Desk = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function review(id, verdict, reason) {
    const r = await fetch(`/api/events/${encodeURIComponent(id)}/review`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify({verdict, reason: reason || null})});
    if (!r.ok) throw new Error((await r.json()).detail || r.statusText);
    return r.json();
  }

  function badge(verdict, reason) {
    const b = document.createElement("span");
    b.className = `badge ${verdict}`;
    b.textContent = reason ? `${verdict}: ${reason}` : verdict;
    return b;
  }

  function typing(e) { return ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName); }

  // Reject: pick a reason with 1-4 (or a click); Esc cancels.
  function reasons(onPick) {
    const box = document.getElementById("reasons");
    let pending = null;
    box.addEventListener("click", (e) => { if (e.target.dataset.reason !== undefined) done(e.target.dataset.reason); });
    function done(reason) { box.hidden = true; const f = pending; pending = null; if (f && reason) f(reason); }
    return {
      ask(f) { pending = f; box.hidden = false; },
      key(e) {
        if (!pending) return false;
        const buttons = [...box.querySelectorAll("button[data-reason]")].filter((b) => b.dataset.reason);
        const n = parseInt(e.key, 10);
        if (n >= 1 && n <= buttons.length) done(buttons[n - 1].dataset.reason);
        else if (e.key === "Escape") done("");
        return true;
      },
    };
  }

  function list(table) {
    const body = table.tBodies[0];
    const filters = JSON.parse(table.dataset.filters);
    const ask = reasons();
    let selected = null;  // the row element: rows added above it by live updates do not move the choice
    const rows = () => [...body.querySelectorAll("tr.event")];
    const index = () => Math.max(0, rows().indexOf(selected));
    function select(i) {
      const all = rows();
      if (!all.length) return;
      const n = Math.max(0, Math.min(i, all.length - 1));
      if (selected) selected.classList.remove("selected");
      selected = all[n];
      selected.classList.add("selected");
      selected.scrollIntoView({block: "nearest"});
      if (n === all.length - 1) more();
    }
    async function more() {  // the next page, appended: the keyboard never waits for a reload
      const link = body.querySelector("tr.more");
      if (!link || link.dataset.loading) return;
      link.dataset.loading = "1";
      const params = new URLSearchParams({...clean(filters), cursor: link.dataset.next});
      const html = await (await fetch(`/fragments/rows?${params}`, {credentials: "same-origin"})).text();
      link.insertAdjacentHTML("afterend", html);
      link.remove();
    }
    async function judge(verdict, reason) {
      const row = selected;
      if (!row) return;
      try {
        await review(row.dataset.id, verdict, reason);
        row.querySelector(".verdict").replaceChildren(badge(verdict, reason));
        if (row === selected) select(rows().indexOf(row) + 1);
      } catch (err) { alert(err.message); }
    }
    document.addEventListener("keydown", (e) => {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (ask.key(e)) { e.preventDefault(); return; }
      if (e.key === "j") select(index() + 1);
      else if (e.key === "k") select(index() - 1);
      else if (e.key === "Enter" && selected) location.href = `/events/${encodeURIComponent(selected.dataset.id)}`;
      else if (e.key === "y") judge("confirmed");
      else if (e.key === "n") ask.ask((reason) => judge("rejected", reason));
      else return;
      e.preventDefault();
    });
    select(0);
    if (!table.dataset.cursor) live(body, filters);  // an older page gets no newer rows on top
  }

  function clean(obj) { return Object.fromEntries(Object.entries(obj).filter(([, v]) => v)); }

  // New events appear at the top without a reload: every 5 s, the rows newer than the newest shown.
  function live(body, filters) {
    setInterval(async () => {
      const top = body.querySelector("tr.event");
      const since = top ? top.dataset.firstSeen : "";
      const params = new URLSearchParams({...clean(filters), ...(since ? {since} : {}), limit: 50});
      const r = await fetch(`/fragments/rows?${params}`, {credentials: "same-origin"});
      if (!r.ok) return;
      const holder = document.createElement("tbody");
      holder.innerHTML = await r.text();
      const known = new Set([...body.querySelectorAll("tr.event")].map((row) => row.dataset.id));
      const fresh = [...holder.querySelectorAll("tr.event")].filter((row) => !known.has(row.dataset.id));
      fresh.reverse().forEach((row) => body.prepend(row));
      if (fresh.length) document.getElementById("live").textContent = `${fresh.length} new`;
    }, 5000);
  }

  function event(view, tiles) {
    const ask = reasons();
    const id = view.dataset.id;
    const snapshot = document.getElementById("snapshot");
    snapshot.addEventListener("click", () => snapshot.parentElement.classList.toggle("zoomed"));
    async function judge(verdict, reason) {
      try {
        const done = await review(id, verdict, reason);
        const note = document.createElement("small");
        note.id = "sticks";
        note.textContent = done.sticks ? " remembered: the same object here raises no new event (undo on Rejected)"
          : (verdict === "rejected" ? ` not remembered: ${done.why_not}` : "");
        document.getElementById("verdict").replaceChildren(badge(verdict, reason), note);
      } catch (err) { alert(err.message); }
    }
    document.getElementById("confirm").onclick = () => judge("confirmed");
    document.getElementById("reject").onclick = () => ask.ask((reason) => judge("rejected", reason));
    document.addEventListener("keydown", (e) => {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (ask.key(e)) { e.preventDefault(); return; }
      const go = (a) => { const link = document.getElementById(a); if (link) location.href = link.href; };
      if (e.key === "y") judge("confirmed");
      else if (e.key === "n") ask.ask((reason) => judge("rejected", reason));
      else if (e.key === "j") go("older");
      else if (e.key === "k") go("newer");
      else return;
      e.preventDefault();
    });
    const mini = document.getElementById("minimap");
    if (mini && window.L) map(mini, [{lat: +mini.dataset.lat, lon: +mini.dataset.lon}], [id], [""], tiles, 18);
  }

  // Leaflet with a configured tile server, else markers on a blank map with a scale (offline).
  function map(el, locations, ids, kinds, tiles, zoom) {
    const m = L.map(el, {zoomControl: true});
    if (tiles) L.tileLayer(tiles, {maxZoom: 20, attribution: "map tiles"}).addTo(m);
    L.control.scale({metric: true, imperial: false}).addTo(m);
    const points = locations.map((loc, i) => {
      const marker = L.marker([loc.lat, loc.lon]).addTo(m);
      if (ids[i] && kinds[i]) {
        const link = document.createElement("a");  // text, never HTML, from event fields
        link.href = `/events/${encodeURIComponent(ids[i])}`;
        link.textContent = kinds[i];
        marker.bindPopup(link);
      }
      return [loc.lat, loc.lon];
    });
    if (points.length === 1) m.setView(points[0], zoom || 18);
    else if (points.length) m.fitBounds(points, {padding: [30, 30], maxZoom: 19});
    else m.setView([0, 0], 2);
    el.dataset.markers = points.length;
    return m;
  }

  // The pool's cameras on the dashboard: "Remove from the pool" asks, then takes the camera out.
  function pool(table) {
    table.addEventListener("click", async (e) => {
      const id = e.target.dataset.poolRemove;
      if (id === undefined || !window.confirm(`Stop watching ${id} on every machine?`)) return;
      const r = await fetch(`/api/pool/cameras/${encodeURIComponent(id)}`, {
        method: "DELETE", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}});
      if (r.ok) e.target.closest("tr").remove();
      else window.alert((await r.json()).detail || r.statusText);
    });
  }

  // Rejected objects: "Undo" lifts the hold, so the object raises its event again when next seen.
  function suppressions(table) {
    table.addEventListener("click", async (e) => {
      const id = e.target.dataset.undo;
      if (id === undefined) return;
      const r = await fetch(`/api/suppressions/${encodeURIComponent(id)}/undo`, {
        method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}});
      if (r.ok) { e.target.closest("tr").classList.add("lifted"); e.target.replaceWith("undone"); }
      else window.alert((await r.json()).detail || r.statusText);
    });
  }

  // Cards per camera group: "Roll back" goes back to the card before; the group's processes switch in seconds.
  function rollback(table) {
    table.addEventListener("click", async (e) => {
      const group = e.target.dataset.rollback;
      if (group === undefined || !window.confirm(`Roll ${group} back to the card it ran before?`)) return;
      const r = await fetch(`/api/cards/${encodeURIComponent(group)}/rollback`, {
        method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}});
      if (r.ok) location.reload();
      else window.alert((await r.json()).detail || r.statusText);
    });
  }

  return {list, event, map, pool, suppressions, rollback};
})();
