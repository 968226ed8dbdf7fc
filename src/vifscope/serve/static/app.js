// The page: load topology + vifs, draw, then follow server-sent events (no reload needed).
import { getJSON, vifKey, vifNodeId } from "./api.js";
import { dimOthers, drawGraph, markSelected, recolour } from "./graph.js";
import { filterRows, markRow, renderTable, updateRow } from "./table.js";
import { showNode, showVif } from "./details.js";

const state = {
  info: { mutations: false },
  vifs: new Map(), // key "uuid:index" -> vif dict (status --json shape)
  nodes: new Map(), // node id -> node dict
  selected: null, // vif key or node id
  updates: 0, // events applied since the page loaded (tests read it; a reload resets it)
};
const $ = (id) => document.getElementById(id);

function showErrors(errors) {
  const box = $("errors");
  box.replaceChildren();
  for (const e of errors) {
    const line = document.createElement("div");
    line.textContent = `${e.source}: ${e.error}${e.hint ? ` — ${e.hint}` : ""}`;
    box.appendChild(line);
  }
}

function showSummary(summary) {
  const box = $("summary");
  box.replaceChildren();
  for (const [status, n] of Object.entries(summary).sort()) {
    const chip = document.createElement("span");
    chip.className = `chip st-${status}`;
    chip.textContent = `${n} ${status}`;
    chip.dataset.status = status;
    box.appendChild(chip);
  }
}

function select(id) {
  state.selected = id;
  const vif = state.vifs.get(id) || state.vifs.get(id.replace(/^vif:/, ""));
  const panel = $("details");
  if (vif) {
    markSelected($("graph"), vifNodeId(vif));
    markRow($("vifs").tBodies[0], vifKey(vif));
    state.selected = vifKey(vif);
    return showVif(panel, vif, state.info);
  }
  const node = state.nodes.get(id);
  markSelected($("graph"), id);
  markRow($("vifs").tBodies[0], null);
  return node ? showNode(panel, node) : Promise.resolve();
}

function applyFilter() {
  const q = $("filter").value.trim().toLowerCase();
  const keep = (domain) => !q || (domain || "").toLowerCase().includes(q);
  filterRows($("vifs").tBodies[0], keep);
  dimOthers($("graph"), keep);
}

async function loadAll() {
  const [topo, status] = await Promise.all([getJSON("/api/v1/topology"), getJSON("/api/v1/vifs")]);
  state.vifs = new Map(status.vifs.map((v) => [vifKey(v), v]));
  state.nodes = new Map(topo.nodes.map((n) => [n.id, n]));
  $("host").textContent = `${status.host} · ${status.uri}`;
  showSummary(status.summary);
  showErrors(status.source_errors);
  drawGraph($("graph"), topo, select);
  renderTable($("vifs").tBodies[0], status.vifs, select);
  applyFilter();
  if (state.selected) select(state.selected);
}

function applyChange(doc) {
  state.updates += 1;
  showSummary(doc.summary);
  showErrors(doc.source_errors);
  if (doc.topology_changed || doc.removed.length) return loadAll();
  const tbody = $("vifs").tBodies[0];
  let missing = false;
  for (const v of doc.changed) {
    state.vifs.set(vifKey(v), v);
    const drawn = recolour($("graph"), vifNodeId(v), v.status, v.detail);
    missing = missing || !drawn || !updateRow(tbody, v);
    if (state.selected === vifKey(v)) select(state.selected);
  }
  return missing ? loadAll() : Promise.resolve();
}

function follow() {
  const live = $("live");
  const source = new EventSource("/api/v1/events");
  const mark = (on, text) => { live.className = `live ${on ? "on" : "off"}`; live.textContent = text; };
  source.addEventListener("hello", () => { mark(true, "live"); loadAll().catch(report); });
  source.addEventListener("vifs", (ev) => applyChange(JSON.parse(ev.data)).catch(report));
  source.addEventListener("resync", () => loadAll().catch(report));
  source.addEventListener("error", (ev) => {
    if (ev.data) report(new Error(JSON.parse(ev.data).error));
    else mark(false, "reconnecting");
  });
}

function report(err) {
  showErrors([{ source: "page", error: err.message, hint: err.hint || "" }]);
}

async function main() {
  window.vifscope = state; // for debugging and the browser test
  $("filter").value = new URLSearchParams(location.search).get("q") || "";
  $("filter").addEventListener("input", applyFilter);
  try {
    state.info = await getJSON("/api/v1/info");
    $("fleet-link").hidden = !state.info.fleet; // a hub (serve --fleet): its fleet page
  } catch (err) {
    report(err);
  }
  follow(); // "hello" triggers the first load, so no change between load and subscribe is lost
}

main();
