// A vif's talkers (serve --flows): who it exchanged traffic with over the server's window,
// re-read every few seconds while its panel stays open.
import { getJSON } from "./api.js";

const REFRESH_MS = 2000;

function size(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}

function rate(bps) {
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"];
  let i = 0;
  while (bps >= 1000 && i < units.length - 1) { bps /= 1000; i += 1; }
  return i ? `${bps.toFixed(1)} ${units[i]}` : `${Math.round(bps)} bit/s`;
}

function cell(tr, text, tag = "td") {
  const td = document.createElement(tag);
  td.textContent = text;
  tr.appendChild(td);
}

function note(section, text) {
  const p = document.createElement("p");
  p.className = "muted flows-note";
  p.textContent = text;
  section.appendChild(p);
}

function heading(section, text) {
  const h = document.createElement("h3");
  h.textContent = text;
  section.replaceChildren(h);
}

function talkerTable(v) {
  const table = document.createElement("table");
  table.className = "talkers";
  const head = document.createElement("tr");
  for (const c of ["peer", "vif of", "out", "out rate", "in", "in rate", "pkts"]) cell(head, c, "th");
  table.createTHead().appendChild(head);
  const body = table.createTBody();
  for (const t of [...v.talkers, ...(v.other ? [v.other] : [])]) {
    const tr = body.insertRow();
    tr.className = "talker";
    tr.dataset.key = t.key;
    for (const text of [t.key, t.peer || "", size(t.out.bytes), rate(t.out.bps), size(t.in.bytes), rate(t.in.bps),
      `${t.out.packets}/${t.in.packets}`]) cell(tr, text);
  }
  return table;
}

function render(section, doc) {
  heading(section, `Talkers (last ${Math.round(doc.seconds || 0)} s)`);
  if (!doc.attached) return note(section, "no flow program on this vif's tap (not running, or not attached yet)");
  const v = doc.vifs[0];
  if (!v || !v.talkers.length) return note(section, "no traffic in this window");
  note(section, `out ${rate(v.out.bps)}, in ${rate(v.in.bps)}`);
  section.appendChild(talkerTable(v));
}

function unavailable(section, err) {
  heading(section, "Talkers");
  const bpf = err.doc && err.doc.source_errors ? err.doc.source_errors.find((e) => e.source === "bpf") : null;
  const why = bpf ? `${bpf.error}${bpf.hint ? ` — ${bpf.hint}` : ""}` : `${err.message}${err.hint ? ` (${err.hint})` : ""}`;
  note(section, `flows unavailable: ${why}`);
}

// Fills ``section`` now and every REFRESH_MS until it is taken off the page (another vif
// selected, or the panel redrawn by a live update, which starts its own).
export function talkersInto(section, v, flowsOn) {
  if (!flowsOn) {
    heading(section, "Talkers");
    note(section, "flows are off on this server — start it with: vifscope serve --flows");
    return;
  }
  const path = `/api/v1/vifs/${encodeURIComponent(v.domain)}/${encodeURIComponent(v.mac)}/flows?top=10`;
  heading(section, "Talkers");
  note(section, "reading…");
  const tick = async () => {
    if (!section.isConnected) return;
    try {
      render(section, await getJSON(path));
    } catch (err) {
      unavailable(section, err);
    }
    setTimeout(tick, REFRESH_MS);
  };
  setTimeout(tick, 0);
}
