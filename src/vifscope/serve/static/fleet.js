// The hub's fleet page: every host of the inventory with its counts (GET /api/v1/fleet, every
// few seconds); a click draws that host's topology, fetched through the hub (it holds the
// agents' tokens). Every name from the data is set with textContent: never parsed as HTML.
import { getJSON } from "./api.js";
import { drawGraph } from "./graph.js";

const REFRESH_MS = 5000;
const SEVERITIES = ["error", "warning", "info"];
const state = { doc: null, selected: null, loads: 0 };
const $ = (id) => document.getElementById(id);

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

function chips(counts, prefix) {
  const cell = document.createElement("td");
  for (const [key, n] of Object.entries(counts).sort()) {
    const chip = text("span", `${n} ${key}`, `chip ${prefix}${key}`);
    chip.dataset.key = key;
    chip.dataset.count = String(n);
    cell.appendChild(chip);
  }
  return cell;
}

function findingsCell(counts) {
  const ordered = {};
  for (const sev of SEVERITIES) if (counts[sev]) ordered[sev] = counts[sev];
  const cell = chips(ordered, "sev-");
  cell.querySelectorAll(".chip").forEach((c) => c.classList.add("finding-chip"));
  return cell;
}

function hostRow(h, errors) {
  const row = document.createElement("tr");
  row.dataset.host = h.name;
  row.className = `host-${h.status}${state.selected === h.name ? " selected" : ""}`;
  const name = text("td", h.name);
  if (h.host_id && h.host_id !== h.name) name.title = `host id ${h.host_id}`;
  row.appendChild(name);
  const st = text("td", h.answered ? h.status : "unreachable", "state");
  if (!h.answered) st.title = errors.get(h.name) || "";
  row.appendChild(st);
  row.appendChild(chips(h.summary, "st-"));
  row.appendChild(findingsCell(h.findings));
  row.addEventListener("click", () => selectHost(h.name));
  return row;
}

function showErrors(lines) {
  const box = $("errors");
  box.replaceChildren(...lines.map((l) => text("div", l)));
}

function render(doc) {
  const errors = new Map(doc.host_errors.map((e) => [e.host, e.error]));
  $("hosts").tBodies[0].replaceChildren(...doc.hosts.map((h) => hostRow(h, errors)));
  const s = doc.summary;
  const box = $("summary");
  box.replaceChildren(text("span", `${s.answered}/${s.hosts} hosts answered`, "chip"));
  for (const [k, n] of Object.entries(s.vifs).sort()) box.appendChild(text("span", `${n} ${k}`, `chip st-${k}`));
  showErrors(doc.host_errors.map((e) => `${e.host}: ${e.error}`));
}

async function refresh() {
  const live = $("live");
  try {
    state.doc = await getJSON("/api/v1/fleet");
    state.loads += 1;
    render(state.doc);
    live.className = "live on";
    live.textContent = "live";
  } catch (err) {
    live.className = "live off";
    live.textContent = "retrying";
    showErrors([`fleet: ${err.message}${err.hint ? ` — ${err.hint}` : ""}`]);
  }
}

async function selectHost(name) {
  state.selected = name;
  for (const row of $("hosts").tBodies[0].rows) row.classList.toggle("selected", row.dataset.host === name);
  const title = $("graph-title");
  title.textContent = `${name}: loading…`;
  const svg = $("graph");
  try {
    const topo = await getJSON(`/api/v1/fleet/hosts/${encodeURIComponent(name)}/topology`);
    if (state.selected !== name) return; // another host was clicked meanwhile
    title.textContent = name;
    svg.dataset.host = name;
    drawGraph(svg, topo, () => {});
  } catch (err) {
    if (state.selected !== name) return;
    svg.replaceChildren();
    svg.dataset.host = "";
    title.textContent = `${name}: ${err.message}`;
  }
}

function main() {
  window.vifscopeFleet = state; // for the browser test
  refresh();
  setInterval(refresh, REFRESH_MS);
}

main();
