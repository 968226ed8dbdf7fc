// Fetch helpers: every API answer is JSON; errors are {"error", "hint"} with a 4xx/5xx.
export class ApiError extends Error {
  constructor(status, doc) {
    super(doc && doc.error ? doc.error : `HTTP ${status}`);
    this.status = status;
    this.hint = doc && doc.hint ? doc.hint : "";
    this.doc = doc;
  }
}

async function parse(resp) {
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (_) { doc = { error: text }; }
  return doc;
}

export async function getJSON(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  const doc = await parse(resp);
  if (!resp.ok) throw new ApiError(resp.status, doc);
  return doc;
}

// POST with the bearer token; 409 (rolled back / failed) still carries the action report.
export async function postJSON(path, body, token) {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const doc = await parse(resp);
  if (!resp.ok && !(resp.status === 409 && doc && doc.plan)) throw new ApiError(resp.status, doc);
  return doc;
}

export const vifKey = (v) => `${v.domain_uuid}:${v.index}`;
export const vifNodeId = (v) => `vif:${v.domain_uuid}:${v.index}`;
