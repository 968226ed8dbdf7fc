// The details panel: a vif's binding, what the host shows, its findings, and (with a token) actions.
import { getJSON, postJSON } from "./api.js";
import { talkersInto } from "./flows.js";

function h(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function fmt(value) {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.join(", ") : "-";
  return String(value);
}

function list(pairs) {
  const dl = h("dl");
  for (const [k, v] of pairs) {
    dl.appendChild(h("dt", k));
    dl.appendChild(h("dd", fmt(v)));
  }
  return dl;
}

function vifPairs(v) {
  const o = v.observed;
  return [
    ["domain", `${v.domain} (${v.domain_state})`], ["interface", `#${v.index} ${v.type}, model ${fmt(v.model)}`],
    ["mac", v.mac], ["declared", v.bridge || v.network || v.source], ["expected", v.expected_attach],
    ["target", v.target], ["link state", v.link_state], ["problems", v.problems], ["detail", v.detail],
    ["host link", o.present ? `${fmt(o.kind)}, admin ${o.admin_up ? "up" : "down"}, ${fmt(o.oper_state)}` : "absent"],
    ["sits on", o.actual], ["carrier", o.carrier], ["OVS bridge", o.ovs_bridge], ["uplinks", o.uplinks],
  ];
}

function findingNode(f) {
  const box = h("div", null, `finding sev-${f.severity}`);
  box.dataset.check = f.check;
  const head = h("div");
  head.appendChild(h("strong", `${f.severity} ${f.check}`));
  if (f.title) head.appendChild(h("span", ` — ${f.title}`));
  box.appendChild(head);
  box.appendChild(h("div", f.message, "message"));
  if (f.fix) box.appendChild(h("code", f.fix));
  return box;
}

async function findingsInto(section, query, keep) {
  section.replaceChildren(h("h3", "Findings"), h("p", "checking…", "muted"));
  try {
    const doc = await getJSON(`/api/v1/findings?${query}`);
    const mine = doc.findings.filter(keep);
    section.replaceChildren(h("h3", `Findings (${mine.length})`));
    if (!mine.length) section.appendChild(h("p", "no findings", "muted"));
    for (const f of mine) section.appendChild(findingNode(f));
  } catch (err) {
    section.replaceChildren(h("h3", "Findings"), h("p", `could not read findings: ${err.message}`));
  }
}

function resultNode(doc) {
  const box = h("div", null, "result");
  box.appendChild(h("strong", `result: ${doc.result}`));
  for (const a of doc.plan.actions) box.appendChild(h("code", `${a.description}\n${a.commands.join("\n")}`));
  for (const s of doc.plan.skipped) box.appendChild(h("div", `left alone: ${s.reason}: ${s.why}`));
  return box;
}

function actionButtons(v, ctx) {
  const bar = h("div", null, "actions");
  const out = h("div");
  const token = h("input");
  token.type = "password";
  token.placeholder = "API token";
  token.value = sessionStorage.getItem("vifscope-token") || "";
  bar.appendChild(token);
  const base = `/api/v1/vifs/${encodeURIComponent(v.domain)}/${encodeURIComponent(v.mac)}`;
  const run = async (what, body) => {
    sessionStorage.setItem("vifscope-token", token.value);
    out.replaceChildren(h("p", `${what}…`, "muted"));
    try {
      out.replaceChildren(resultNode(await postJSON(`${base}/${what}`, body, token.value)));
    } catch (err) {
      out.replaceChildren(h("p", `${err.message}${err.hint ? ` (${err.hint})` : ""}`));
    }
  };
  const buttons = [["fix", "fix", {}], ["heal", "heal", {}],
    [v.link_state === "down" ? "link up" : "link down", "link", { state: v.link_state === "down" ? "up" : "down" }]];
  for (const [label, what, body] of buttons) {
    const b = h("button", label);
    b.dataset.action = what;
    b.addEventListener("click", () => run(what, body));
    bar.appendChild(b);
  }
  const wrap = h("div");
  wrap.append(bar, out);
  return wrap;
}

export function showVif(panel, v, ctx) {
  panel.hidden = false;
  panel.dataset.key = `${v.domain_uuid}:${v.index}`;
  panel.replaceChildren(h("h2", `${v.domain} #${v.index} ${v.target || v.mac || ""}`));
  const status = h("span", v.status, `chip st-${v.status}`);
  status.id = "detail-status";
  panel.firstChild.appendChild(document.createTextNode(" "));
  panel.firstChild.appendChild(status);
  panel.appendChild(list(vifPairs(v)));
  if (ctx.mutations && v.mac && v.domain_state !== "shutoff") panel.appendChild(actionButtons(v, ctx));
  if (v.mac) {
    const talkers = h("section");
    talkers.id = "talkers";
    panel.appendChild(talkers);
    talkersInto(talkers, v, ctx.flows);
  }
  const section = h("section");
  section.id = "findings";
  panel.appendChild(section);
  const same = (f) => f.domain === v.domain && ((v.mac && f.mac === v.mac) || (v.target && f.target === v.target));
  return findingsInto(section, `domain=${encodeURIComponent(v.domain_uuid)}`, same);
}

export function showNode(panel, n) {
  panel.hidden = false;
  panel.dataset.key = n.id;
  panel.replaceChildren(h("h2", `${n.kind} ${n.label}`));
  panel.appendChild(list([["status", n.status], ["name", n.name], ["detail", n.detail]]));
  if (n.kind === "host" || n.kind === "domain") return Promise.resolve();
  const section = h("section");
  section.id = "findings";
  panel.appendChild(section);
  return findingsInto(section, "", (f) => f.domain === null && f.subject === n.name);
}
