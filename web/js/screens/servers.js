// Servers: the project's servers with live status (ctx.events re-reads a changed server through the
// API), the launch form (servers_launch.js) and every action a member takes on a server.
import { NOVA, launchDialog } from "./servers_launch.js";
import { attachVolumeDialog, consoleLogDialog, detachVolumeDialog, floatingIpDialog, openConsole, rebuildDialog, snapshotDialog } from "./servers_actions.js";

// While a server is in one of these (or has a task), the list is re-read if no live stream is up.
const SETTLING = new Set(["BUILD", "REBUILD", "REBOOT", "HARD_REBOOT", "RESIZE", "MIGRATING", "VERIFY_RESIZE", "REVERT_RESIZE"]);
const FALLBACK_POLL_MS = 3000;

function addresses(server) {
  return Object.entries(server.addresses || {}).flatMap(([net, list]) =>
    list.map((a) => `${a.addr}${a["OS-EXT-IPS:type"] === "floating" ? " (floating)" : ""} · ${net}`));
}

/** The simple actions (one POST to /action) by the label on their button. */
const SIMPLE = {
  Start: { "os-start": null },
  Stop: { "os-stop": null },
  Reboot: { reboot: { type: "SOFT" } },
  Pause: { pause: null },
  Unpause: { unpause: null },
  Suspend: { suspend: null },
  Resume: { resume: null },
};

/** Which simple actions a server in `status` offers on its row. */
function rowActions(status) {
  switch (status) {
    case "ACTIVE": return ["Stop", "Reboot"]; // pause, suspend and the rest are under More…
    case "SHUTOFF": return ["Start"];
    case "PAUSED": return ["Unpause"];
    case "SUSPENDED": return ["Resume"];
    default: return [];
  }
}

export default {
  id: "servers",
  title: "Servers",
  group: "project",
  order: 20,
  async render(root, ctx) {
    const { h, table, tableRow, statusBadge, confirm, showError } = ctx.ui;
    const serversUrl = ctx.url("compute", "/servers");
    const servers = new Map();   // id → server, as last read
    const listArea = h("div", { id: "server-list" });
    let pollTimer = null;
    let closed = false;

    const columns = [
      { label: "Name", value: (s) => h("span", { class: "server-name" }, s.name) },
      { label: "Status", value: (s) => h("span", { class: "server-status" }, statusBadge(s.status),
        s["OS-EXT-STS:task_state"] ? h("small", null, ` ${s["OS-EXT-STS:task_state"]}`) : null) },
      { label: "Flavor", value: (s) => (s.flavor && (s.flavor.original_name || s.flavor.id)) || "" },
      { label: "Addresses", value: (s) => h("span", { class: "mono" }, addresses(s).join(", ")) },
      { label: "Actions", value: (s) => actionButtons(s) },
    ];

    function actionButtons(server) {
      return h("div", { class: "buttons" },
        rowActions(server.status).map((label) => h("button", {
          type: "button", "data-action": label.toLowerCase(), onclick: () => simpleAction(server, label),
        }, label)),
        server.status === "ACTIVE" ? h("button", { type: "button", "data-action": "console", onclick: () => openConsole(ctx, server) }, "Console") : null,
        h("button", { type: "button", "data-action": "more", "aria-haspopup": "dialog", onclick: () => moreDialog(server) }, "More…"));
    }

    async function simpleAction(server, label) {
      try {
        await ctx.api("POST", `${serversUrl}/${server.id}/action`, SIMPLE[label], NOVA);
        await refreshOne(server.id);
      } catch (err) { showError(err); }
    }

    async function remove(server) {
      if (!(await confirm(`Delete server ${server.name}? Its disk is lost.`, { yes: "Delete" }))) return;
      try {
        await ctx.api("DELETE", `${serversUrl}/${server.id}`, null, NOVA);
        await refreshOne(server.id);
      } catch (err) { showError(err); }
    }

    function moreDialog(server) {
      const act = (label, fn, extra = {}) => h("button", { type: "button", "data-action": label.toLowerCase().replace(/\W+/g, "-").replace(/^-|-$/g, ""), ...extra,
        onclick: () => { d.close(); fn(); } }, label);
      const d = ctx.ui.dialog(`Server ${server.name}`, h("div", null,
        h("dl", { class: "facts" },
          h("dt", null, "ID"), h("dd", { class: "mono" }, server.id),
          h("dt", null, "Status"), h("dd", null, statusBadge(server.status)),
          h("dt", null, "Addresses"), h("dd", null, addresses(server).join(", ") || "none"),
          server.fault ? [h("dt", null, "Fault"), h("dd", { class: "error" }, server.fault.message)] : null),
        h("div", { class: "buttons" },
          ["Start", "Stop", "Reboot", "Pause", "Unpause", "Suspend", "Resume"].map((label) => act(label, () => simpleAction(server, label))),
          act("Rebuild…", () => rebuildDialog(ctx, server, () => refreshOne(server.id))),
          act("Snapshot…", () => snapshotDialog(ctx, server)),
          act("Attach volume…", () => attachVolumeDialog(ctx, server, () => refreshOne(server.id))),
          act("Detach volume…", () => detachVolumeDialog(ctx, server, () => refreshOne(server.id))),
          act("Add floating IP…", () => floatingIpDialog(ctx, server, () => refreshOne(server.id))),
          act("Console log", () => consoleLogDialog(ctx, server)),
          act("Console", () => openConsole(ctx, server)),
          act("Delete", () => remove(server), { class: "danger" }))), []);
    }

    function draw() {
      const rows = [...servers.values()].sort((a, b) => (a.name || "").localeCompare(b.name || "") || a.id.localeCompare(b.id));
      listArea.replaceChildren(table(columns, rows, { empty: "No servers yet: launch one.", key: (s) => s.id }));
      schedulePoll();
    }

    /** Put one server's row in place (or take it away), without redrawing the others. */
    function drawOne(id) {
      const row = listArea.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
      const server = servers.get(id);
      if (!row || !server) { draw(); return; }
      const fresh = tableRow(columns, server, (s) => s.id);
      const hadFocus = row.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      row.replaceWith(fresh);
      if (hadFocus) { const again = fresh.querySelector(`[data-action="${hadFocus}"]`); if (again) again.focus(); }
      schedulePoll();
    }

    async function refreshAll() {
      const list = (await ctx.api("GET", `${serversUrl}/detail`, null, NOVA)).data.servers;
      servers.clear();
      for (const s of list) if (!gone.has(s.id)) servers.set(s.id, s);
      if (!closed) draw();
    }

    // Reads of one server may answer out of order (events come fast): only the newest read of an
    // id is drawn, and an id whose delete event came is never drawn again.
    const reads = new Map();
    const gone = new Set();

    async function refreshOne(id) {
      const seq = (reads.get(id) || 0) + 1;
      reads.set(id, seq);
      let server = null;
      try {
        server = (await ctx.api("GET", `${serversUrl}/${id}`, null, NOVA)).data.server;
      } catch (err) {
        if (err.status !== 404) throw err;
      }
      if (closed || reads.get(id) !== seq) return;
      if (!server || server.status === "DELETED" || gone.has(id)) servers.delete(id); else servers.set(id, server);
      drawOne(id);
    }

    /** Without a live stream, re-read the list while anything is still changing. */
    function schedulePoll() {
      clearTimeout(pollTimer);
      if (closed || ctx.events.live) return;
      const busy = [...servers.values()].some((s) => SETTLING.has(s.status) || s["OS-EXT-STS:task_state"]);
      if (busy) pollTimer = setTimeout(() => refreshAll().catch(showError), FALLBACK_POLL_MS);
    }

    const offServer = ctx.events.on({ service: "compute", type: "server" }, (event) => {
      if (event.action === "delete") {
        gone.add(event.id);
        reads.set(event.id, (reads.get(event.id) || 0) + 1); // a read still under way is stale now
        servers.delete(event.id);
        drawOne(event.id);
        return;
      }
      refreshOne(event.id).catch(showError);
    });
    // Changes may have been missed (the stream reconnected, or dropped events): read the list again.
    const offResync = ctx.events.on({ service: "cloudbox", type: "resync" }, () => refreshAll().catch(showError));
    const offStream = ctx.events.on({ service: "cloudbox", type: "stream" }, () => schedulePoll());

    root.append(ctx.ui.screenHead("Servers",
      { label: "Refresh", onClick: () => refreshAll().catch(showError) },
      { label: "Launch server", primary: true, onClick: () => launchDialog(ctx, () => refreshAll().catch(showError)).catch(showError) }),
    listArea);
    await refreshAll();
    if (ctx.params && ctx.params.id && servers.has(ctx.params.id)) moreDialog(servers.get(ctx.params.id));
    return () => { closed = true; clearTimeout(pollTimer); offServer(); offResync(); offStream(); };
  },
};
