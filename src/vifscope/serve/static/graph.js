// Draws the topology (nodes already laid out by the server) as SVG; recolours in place.
const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 150;
const BOX_H = 24;
const MAX_LABEL = 22;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function short(text) {
  return text.length > MAX_LABEL ? `${text.slice(0, MAX_LABEL - 1)}…` : text;
}

function edgePath(a, b) {
  const x1 = a.x + BOX_W / 2;
  const x2 = b.x - BOX_W / 2;
  const mid = (x1 + x2) / 2;
  return `M${x1},${a.y} C${mid},${a.y} ${mid},${b.y} ${x2},${b.y}`;
}

function nodeClass(n) {
  return `node kind-${n.kind} st-${n.status}`;
}

function drawNode(layer, n, pos, onSelect) {
  const g = el("g", { class: nodeClass(n), transform: `translate(${pos.x},${pos.y})`, tabindex: "0" }, layer);
  g.dataset.id = n.id;
  g.dataset.kind = n.kind;
  g.dataset.status = n.status;
  if (n.domain) g.dataset.domain = n.domain;
  el("rect", { x: -BOX_W / 2, y: -BOX_H / 2, width: BOX_W, height: BOX_H, rx: 4 }, g);
  const text = el("text", { x: 0, y: 0 }, g);
  text.textContent = short(n.label);
  const title = el("title", {}, g);
  title.textContent = `${n.kind} ${n.label}: ${n.status}${n.detail ? `\n${n.detail}` : ""}`;
  g.addEventListener("click", () => onSelect(n.id));
  g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onSelect(n.id); });
  return g;
}

// Replace the whole drawing (new topology shape).
export function drawGraph(svg, topo, onSelect) {
  svg.replaceChildren();
  const lay = topo.layout;
  svg.setAttribute("viewBox", `0 0 ${lay.width + BOX_W} ${lay.height}`);
  svg.setAttribute("width", lay.width + BOX_W);
  svg.setAttribute("height", lay.height);
  const shift = (id) => {
    const p = lay.positions[id];
    return p ? { x: p.x + BOX_W / 2, y: p.y } : null;
  };
  const edges = el("g", { class: "edges" }, svg);
  for (const e of topo.edges) {
    const a = shift(e.source);
    const b = shift(e.target);
    if (!a || !b) continue;
    const path = el("path", { d: edgePath(a, b), class: `edge kind-${e.kind} state-${e.state}` }, edges);
    path.dataset.source = e.source;
    path.dataset.target = e.target;
  }
  const nodes = el("g", { class: "nodes" }, svg);
  for (const n of topo.nodes) {
    const p = shift(n.id);
    if (p) drawNode(nodes, n, p, onSelect);
  }
}

// A vif's verdict changed but the graph's shape did not: recolour its node.
export function recolour(svg, nodeId, status, detail) {
  const g = svg.querySelector(`g.node[data-id="${CSS.escape(nodeId)}"]`);
  if (!g) return false;
  g.setAttribute("class", g.getAttribute("class").replace(/\bst-\S+/, `st-${status}`));
  g.dataset.status = status;
  const title = g.querySelector("title");
  if (title && detail !== undefined) title.textContent = title.textContent.replace(/: .*$/s, `: ${status}\n${detail}`);
  return true;
}

export function markSelected(svg, nodeId) {
  for (const g of svg.querySelectorAll("g.node.selected")) g.classList.remove("selected");
  const g = nodeId ? svg.querySelector(`g.node[data-id="${CSS.escape(nodeId)}"]`) : null;
  if (g) g.classList.add("selected");
}

export function dimOthers(svg, keep) {
  for (const g of svg.querySelectorAll("g.node")) {
    const d = g.dataset.domain;
    g.classList.toggle("dim", Boolean(d) && !keep(d));
  }
}
