// The vif table beside the graph: one row per vif, updated in place by key.
import { vifKey } from "./api.js";

function plugged(v) {
  return v.bridge || v.network || v.source || (v.expected_lower ? String(v.expected_lower) : "") || "-";
}

function cells(v) {
  return [v.domain, String(v.index), v.target || "-", v.mac || "-", plugged(v)];
}

function fill(tr, v) {
  tr.replaceChildren();
  for (const text of cells(v)) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  const td = document.createElement("td");
  const chip = document.createElement("span");
  chip.className = `chip st-${v.status}`;
  chip.textContent = v.status;
  chip.title = v.detail;
  td.appendChild(chip);
  tr.appendChild(td);
  tr.dataset.status = v.status;
  tr.dataset.domain = v.domain;
}

export function renderTable(tbody, vifs, onSelect) {
  tbody.replaceChildren();
  for (const v of vifs) {
    const tr = document.createElement("tr");
    tr.dataset.key = vifKey(v);
    fill(tr, v);
    tr.addEventListener("click", () => onSelect(tr.dataset.key));
    tbody.appendChild(tr);
  }
}

export function updateRow(tbody, v) {
  const tr = tbody.querySelector(`tr[data-key="${CSS.escape(vifKey(v))}"]`);
  if (!tr) return false;
  fill(tr, v);
  return true;
}

export function markRow(tbody, key) {
  for (const tr of tbody.querySelectorAll("tr.selected")) tr.classList.remove("selected");
  const tr = key ? tbody.querySelector(`tr[data-key="${CSS.escape(key)}"]`) : null;
  if (tr) {
    tr.classList.add("selected");
    tr.scrollIntoView({ block: "nearest" });
  }
}

export function filterRows(tbody, keep) {
  for (const tr of tbody.querySelectorAll("tr")) tr.classList.toggle("hidden", !keep(tr.dataset.domain));
}
