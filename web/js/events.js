// The live event stream: GET /cloudbox/v1/events read with fetch and a stream reader (not
// EventSource), so the token travels in X-Auth-Token and never in a URL.
//
//   const stream = connect(token, onEvent, onState);
//   const off = stream.on({ service: "compute", type: "server" }, (event) => ...);
//   stream.close();
//
// onEvent(event) gets every event as one object:
//   change: { service, type, id, project_id, action: "create" | "update" | "delete", status? }
//   node (administrators): { service: "cluster", type: "node", id, name?, role?, status?, action }
//   resync: { service: "cloudbox", type: "resync" } — events were dropped (a slow reader, or a
//           reconnect): re-read whatever is on screen;
//   expired: { service: "cloudbox", type: "expired", reason: "expired" | "revoked" } — the stream
//           ended for good: the token is no longer valid.
// onState(state): "connecting", "open", "retrying" (waiting to reconnect), "expired" or "closed".

const PATH = "/cloudbox/v1/events";
const FIRST_DELAY = 1000;   // ms before the first reconnect; doubles up to MAX_DELAY
const MAX_DELAY = 30000;
const BUSY_DELAY = 15000;   // ms after a 429 (too many streams open for this user)
const SILENCE = 40000;      // ms without a byte (the server sends a keep-alive every 15 s): reconnect

function matches(filter, event) {
  return Object.entries(filter || {}).every(([key, value]) => value === undefined || event[key] === value);
}

// Split SSE text into events: blocks end with a blank line; "event:" and "data:" fields; ":" comments.
export function parseBlocks(text) {
  const events = [];
  const blocks = text.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const block of blocks) {
    let kind = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) events.push({ kind, data: data.join("\n") });
  }
  return { events, rest };
}

function toEvent(kind, data) {
  let body;
  try { body = JSON.parse(data); } catch { return null; }
  if (kind === "change") return body;
  if (kind === "node") return { ...body, service: "cluster", type: "node" };
  if (kind === "resync") return { service: "cloudbox", type: "resync" };
  if (kind === "expired") return { service: "cloudbox", type: "expired", reason: body.reason || "expired" };
  return null;
}

export function connect(token, onEvent, onState, { base = "" } = {}) {
  const handlers = new Set();
  let controller = null;
  let closed = false;
  let delay = FIRST_DELAY;
  let retryTimer = null;
  let everOpen = false;
  let state = "";

  const setState = (next) => {
    if (next === state) return;
    state = next;
    if (onState) {
      try { onState(next); } catch (err) { console.error("event stream state handler failed", err); }
    }
  };

  const deliver = (event) => {
    if (onEvent) {
      try { onEvent(event); } catch (err) { console.error("event handler failed", err); }
    }
    for (const entry of [...handlers]) {
      if (!matches(entry.filter, event)) continue;
      try { entry.fn(event); } catch (err) { console.error("event listener failed", err); }
    }
  };

  const stop = (finalState) => {
    closed = true;
    clearTimeout(retryTimer);
    if (controller) controller.abort();
    setState(finalState);
  };

  const retry = (wait) => {
    if (closed) return;
    setState("retrying");
    retryTimer = setTimeout(open, wait);
    delay = Math.min(delay * 2, MAX_DELAY);
  };

  async function open() {
    if (closed) return;
    setState("connecting");
    controller = new AbortController();
    let silence = null;
    const quiet = () => {
      clearTimeout(silence);
      silence = setTimeout(() => controller.abort(), SILENCE);
    };
    try {
      quiet();
      const response = await fetch(base + PATH, {
        headers: { "X-Auth-Token": token, Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      if (response.status === 401) { clearTimeout(silence); stop("expired"); deliver({ service: "cloudbox", type: "expired", reason: "expired" }); return; }
      if (response.status === 429) { clearTimeout(silence); retry(BUSY_DELAY); return; }
      if (!response.ok || !response.body) {
        clearTimeout(silence);
        // 403 or 406 will not change by retrying; other statuses (503 while a node restarts) may.
        if (response.status === 403 || response.status === 406) stop("closed");
        else retry(delay);
        return;
      }
      setState("open");
      if (everOpen) deliver({ service: "cloudbox", type: "resync" });  // changes may have been missed meanwhile
      everOpen = true;
      delay = FIRST_DELAY;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        quiet();
        buffer += decoder.decode(value, { stream: true });
        const { events, rest } = parseBlocks(buffer);
        buffer = rest;
        for (const { kind, data } of events) {
          const event = toEvent(kind, data);
          if (!event) continue;
          if (event.type === "expired") { clearTimeout(silence); stop("expired"); deliver(event); return; }
          deliver(event);
        }
      }
      clearTimeout(silence);
      retry(FIRST_DELAY);  // the server ended the stream (the node stops): connect again
    } catch (err) {
      clearTimeout(silence);
      if (!closed) retry(delay);  // network error, or silence past SILENCE
    }
  }

  open();
  return {
    on(filter, fn) {
      const entry = { filter, fn };
      handlers.add(entry);
      return () => handlers.delete(entry);
    },
    close() { if (!closed) stop("closed"); },
    get state() { return state; },
  };
}
