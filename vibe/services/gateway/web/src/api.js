// Calls to the gateway's HTTP API: JSON, and POSTs answered with server-sent events.

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function failure(response) {
  const body = await response.json().catch(() => ({}));
  return new ApiError(response.status, body.error?.code || "", body.error?.message || response.statusText);
}

/** JSON of a call; the gateway's error model ({error: {code, message}}) becomes an ApiError.
 * `skew` (ms, the server's clock minus ours, from the Date header) helps timers. */
export async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) throw await failure(response);
  const date = Date.parse(response.headers.get("Date") || "");
  lastSkewMs = Number.isNaN(date) ? 0 : date - Date.now();
  return response.json();
}

let lastSkewMs = 0;
/** The server's clock minus ours, as of the last answer (1 s resolution: the Date header). */
export const clockSkewMs = () => lastSkewMs;

/** POST whose answer is server-sent events; calls onEvent(name, data) for each. An `error`
 * event (the stream had started when it failed) is thrown as an ApiError. */
export async function streamEvents(path, headers, payload, onEvent) {
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(payload) });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      const parsed = JSON.parse(data || "{}");
      if (name === "error") throw new ApiError(200, parsed.code, parsed.message);
      onEvent(name, parsed);
    }
  }
}

/** An element with text (never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);
export const fixed = (x, digits = 2) => (Number(x) || 0).toFixed(digits);
export const lower = (s, prefix) => (s || "").replace(prefix, "").toLowerCase();
