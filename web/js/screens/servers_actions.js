// The servers screen's actions that need a dialog: rebuild, snapshot, attach and detach a volume,
// add a floating IP, the console log, and the browser console. (A helper module of servers.js.)
import { NOVA } from "./servers_launch.js";

const action = (ctx, server, body) => ctx.api("POST", ctx.url("compute", `/servers/${server.id}/action`), body, NOVA);

export async function rebuildDialog(ctx, server, done) {
  const images = (await ctx.api("GET", ctx.url("image", "/images?status=active&limit=1000"))).data.images;
  const d = ctx.ui.dialog(`Rebuild ${server.name}`, ctx.ui.form([
    { name: "image", label: "Image", type: "select", value: server.image && server.image.id,
      options: images.map((i) => ({ value: i.id, label: i.name || i.id })) },
  ], async (v) => {
    await action(ctx, server, { rebuild: { imageRef: v.image } });
    d.close();
    await done();
  }, { submit: "Rebuild" }));
}

export function snapshotDialog(ctx, server) {
  const d = ctx.ui.dialog(`Snapshot ${server.name}`, ctx.ui.form([
    { name: "name", label: "Image name", required: true, value: `${server.name}-snapshot` },
  ], async (v) => {
    await action(ctx, server, { createImage: { name: v.name } });
    d.close();
    ctx.ui.notify(`Snapshot ${v.name} is being made; it shows in Images.`);
  }, { submit: "Snapshot" }));
}

export async function attachVolumeDialog(ctx, server, done) {
  const volumes = (await ctx.api("GET", ctx.url("volumev3", "/volumes/detail?status=available"))).data.volumes;
  const d = ctx.ui.dialog(`Attach a volume to ${server.name}`, ctx.ui.form([
    { name: "volume", label: "Volume", type: "select", required: true,
      options: volumes.map((v) => ({ value: v.id, label: `${v.name || v.id} (${v.size} GB)` })) },
  ], async (v) => {
    if (!v.volume) throw new Error("No volume is available to attach.");
    await ctx.api("POST", ctx.url("compute", `/servers/${server.id}/os-volume_attachments`), { volumeAttachment: { volumeId: v.volume } }, NOVA);
    d.close();
    await done();
  }, { submit: "Attach" }));
}

export async function detachVolumeDialog(ctx, server, done) {
  const attached = (await ctx.api("GET", ctx.url("compute", `/servers/${server.id}/os-volume_attachments`), null, NOVA)).data.volumeAttachments;
  const d = ctx.ui.dialog(`Detach a volume from ${server.name}`, ctx.ui.form([
    { name: "volume", label: "Volume", type: "select", required: true,
      options: attached.map((a) => ({ value: a.volumeId, label: `${a.volumeId} (${a.device || "?"})` })) },
  ], async (v) => {
    if (!v.volume) throw new Error("No volume is attached.");
    await ctx.api("DELETE", ctx.url("compute", `/servers/${server.id}/os-volume_attachments/${v.volume}`), null, NOVA);
    d.close();
    await done();
  }, { submit: "Detach" }));
}

/** Neutron's way (Nova's addFloatingIp left at 2.44): point a floating IP at the server's port. */
export async function floatingIpDialog(ctx, server, done) {
  const get = async (path) => (await ctx.api("GET", ctx.url("network", path))).data;
  const [ports, ips, externals] = await Promise.all([
    get(`/v2.0/ports?device_id=${server.id}`).then((d) => d.ports),
    get("/v2.0/floatingips").then((d) => d.floatingips.filter((f) => !f.port_id)),
    get("/v2.0/networks?router:external=true").then((d) => d.networks),
  ]);
  const d = ctx.ui.dialog(`Add a floating IP to ${server.name}`, ctx.ui.form([
    { name: "ip", label: "Floating IP", type: "select", options: [
      ...ips.map((f) => ({ value: f.id, label: f.floating_ip_address })),
      ...externals.map((n) => ({ value: `new:${n.id}`, label: `Allocate a new one from ${n.name || n.id}` })),
    ] },
    { name: "port", label: "Port of the server", type: "select",
      options: ports.map((p) => ({ value: p.id, label: `${(p.fixed_ips || []).map((f) => f.ip_address).join(", ")} (${p.id.slice(0, 8)})` })) },
  ], async (v) => {
    if (!v.port) throw new Error("The server has no port to give a floating IP to.");
    if (!v.ip) throw new Error("No floating IP is free and no external network is offered.");
    if (v.ip.startsWith("new:")) {
      await ctx.api("POST", ctx.url("network", "/v2.0/floatingips"), { floatingip: { floating_network_id: v.ip.slice(4), port_id: v.port } });
    } else {
      await ctx.api("PUT", ctx.url("network", `/v2.0/floatingips/${v.ip}`), { floatingip: { port_id: v.port } });
    }
    d.close();
    await done();
  }, { submit: "Associate" }));
}

export async function consoleLogDialog(ctx, server) {
  const { h } = ctx.ui;
  const out = h("pre", { class: "console", id: "console-log", tabindex: "0" }, "Reading…");
  const read = async () => {
    const reply = await action(ctx, server, { "os-getConsoleOutput": { length: 500 } });
    out.textContent = reply.data.output || "(no output yet)";
    out.scrollTop = out.scrollHeight;
  };
  const d = ctx.ui.dialog(`Console log of ${server.name}`, out, [
    { label: "Refresh", onClick: read },
    { label: "Close", primary: true },
  ]);
  try { await read(); } catch (err) { d.showError(err); out.textContent = ""; }
}

/** The browser console: Nova's remote-console URL (noVNC), opened in a new tab; a dialog with the
 * link when the browser blocks the new tab. */
export async function openConsole(ctx, server) {
  try {
    const reply = await ctx.api("POST", ctx.url("compute", `/servers/${server.id}/remote-consoles`),
      { remote_console: { protocol: "vnc", type: "novnc" } }, NOVA);
    const url = reply.data.remote_console.url;
    const tab = window.open(url, "_blank");
    if (tab) { tab.opener = null; return; }
    ctx.ui.dialog(`Console of ${server.name}`, ctx.ui.h("p", null,
      ctx.ui.h("a", { href: url, target: "_blank", rel: "noopener", id: "console-link" }, "Open the console in a new tab")), []);
  } catch (err) { ctx.ui.showError(err); }
}
