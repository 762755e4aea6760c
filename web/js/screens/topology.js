// The project's network topology as an SVG laid out here: external networks on top, then routers,
// then the tenant networks as horizontal buses, then servers; a line with a dot on the bus for each
// port. Every shape carries data- attributes naming its id (tests and the keyboard find them by it),
// and the picture is redrawn when the event stream says a network thing or a server changed.
import { h, screenHead } from "../ui.js";
import { s, live, get, region } from "../more/kit.js";

const N = (path) => `/v2.0${path}`;
const BUS = 14, BOX_W = 120, BOX_H = 40, SLOT = 150, MARGIN = 24;
const ROUTER_PORTS = new Set(["network:router_interface", "network:router_interface_distributed", "network:ha_router_replicated_interface"]);

/** The project's part of the cloud: what it owns, what it uses, and the external networks. */
async function fetchState(ctx) {
  const [{ networks }, { subnets }, { routers }, { ports }, servers] = await Promise.all([
    get(ctx, "network", N("/networks")), get(ctx, "network", N("/subnets")), get(ctx, "network", N("/routers")),
    get(ctx, "network", N("/ports")),
    get(ctx, "compute", "/servers/detail").then((d) => d.servers)]);
  const project = ctx.session.project?.id;
  const ours = (row) => !project || row.project_id === project || row.tenant_id === project;
  const myRouters = routers.filter(ours);
  const devices = new Set([...myRouters.map((r) => r.id), ...servers.map((sv) => sv.id)]);
  const myPorts = ports.filter((p) => devices.has(p.device_id));
  const used = new Set([...myPorts.map((p) => p.network_id),
    ...myRouters.map((r) => r.external_gateway_info?.network_id).filter(Boolean)]);
  const shown = networks.filter((n) => ours(n) || n["router:external"] || used.has(n.id));
  return { networks: shown, subnets, routers: myRouters, ports: myPorts, servers };
}

/** Positions of everything: pure, from the state. */
export function layout(state) {
  const external = state.networks.filter((n) => n["router:external"]);
  const tenant = state.networks.filter((n) => !n["router:external"]);
  const columns = Math.max(state.routers.length, state.servers.length, 3);
  const width = MARGIN * 2 + columns * SLOT;
  const bus = new Map();
  let y = MARGIN + 10;
  for (const n of external) { bus.set(n.id, y); y += BUS + 26; }
  const routerY = y + 30;
  y = routerY + BOX_H + 50;
  for (const n of tenant) { bus.set(n.id, y); y += BUS + 30; }
  const serverY = y + 30;
  const spread = (items, top) => new Map(items.map((item, i) => [item.id,
    { x: MARGIN + (width - 2 * MARGIN) * (i + 0.5) / items.length, y: top }]));
  return { width, height: serverY + BOX_H + MARGIN + 16, bus, routers: spread(state.routers, routerY),
           servers: spread(state.servers, serverY), external, tenant };
}

function drawBus(network, y, width, subnets) {
  const cidrs = subnets.filter((sn) => sn.network_id === network.id).map((sn) => sn.cidr).join(", ");
  const external = network["router:external"];
  return s("g", { class: "topo-network", "data-network-id": network.id, "data-kind": external ? "external" : "network",
                  tabindex: 0, role: "listitem", "aria-label": `network ${network.name} ${cidrs}` },
    s("title", {}, `${network.name || network.id}${cidrs ? " " + cidrs : ""}`),
    s("rect", { x: MARGIN / 2, y, width: width - MARGIN, height: BUS, rx: 4 }),
    s("text", { x: MARGIN, y: y - 4, class: "topo-label" },
      `${network.name || network.id.slice(0, 8)}${cidrs ? "  " + cidrs : ""}${external ? "  (external)" : ""}`));
}

function drawBox(kind, item, at, label, status) {
  return s("g", { class: `topo-${kind}`, [`data-${kind}-id`]: item.id, "data-kind": kind, "data-status": status,
                  tabindex: 0, role: "listitem", "aria-label": `${kind} ${label}${status ? " " + status : ""}` },
    s("title", {}, `${kind} ${label}${status ? " (" + status + ")" : ""}`),
    s("rect", { x: at.x - BOX_W / 2, y: at.y, width: BOX_W, height: BOX_H, rx: kind === "router" ? 20 : 6 }),
    s("text", { x: at.x, y: at.y + 17, "text-anchor": "middle", class: "topo-name" },
      label.length > 16 ? label.slice(0, 15) + "…" : label),
    s("text", { x: at.x, y: at.y + 31, "text-anchor": "middle", class: "topo-status" },
      (status || kind).length > 22 ? (status || kind).slice(0, 21) + "…" : status || kind));
}

/** A line from a device's box to a network's bus, and the dot where its port meets the bus: [line, dot].
 * Lines go under the buses (one passing a bus it is not on hides behind it), dots over them. */
function drawLink(kind, deviceId, at, networkId, busY, portId, address, offset) {
  const x = at.x + offset * 8;  // side by side when one device has several ports
  const fromY = busY < at.y ? at.y : at.y + BOX_H;
  const toY = busY < at.y ? busY + BUS : busY;
  const names = { "data-link": kind, [`data-${kind === "gateway" ? "router" : kind}-id`]: deviceId,
                  "data-network-id": networkId, "data-port-id": portId || undefined };
  return [s("g", { class: "topo-link", ...names }, s("title", {}, address || ""), s("line", { x1: x, y1: fromY, x2: x, y2: toY })),
          s("circle", { class: "topo-port", cx: x, cy: busY + BUS / 2, r: 5, ...names }, s("title", {}, address || ""))];
}

const MAX_SERVERS_DRAWN = 24;  // more are drawn as one box per set of networks they are on

/** Servers on the same networks as one box each ({id, name, status, networks, servers}), for a project
 * with too many to draw one by one. */
export function serverGroups(servers, ports) {
  const groups = new Map();
  for (const sv of servers) {
    const networks = [...new Set(ports.filter((p) => p.device_id === sv.id).map((p) => p.network_id))].sort();
    const key = networks.join(",");
    if (!groups.has(key)) groups.set(key, { id: `group:${key || "none"}`, networks, servers: [] });
    groups.get(key).servers.push(sv);
  }
  return [...groups.values()].map((g) => {
    const counts = new Map();
    for (const sv of g.servers) counts.set(sv.status, (counts.get(sv.status) || 0) + 1);
    return { ...g, name: `${g.servers.length} server${g.servers.length === 1 ? "" : "s"}`,
             status: [...counts].map(([status, n]) => `${status} ${n}`).join(", ") };
  });
}

export function draw(state) {
  const boxes = state.servers.length > MAX_SERVERS_DRAWN ? serverGroups(state.servers, state.ports) : state.servers;
  const at = layout({ ...state, servers: boxes });
  const svg = s("svg", { class: "topology", viewBox: `0 0 ${at.width} ${at.height}`, width: at.width, height: at.height,
                         role: "list", "aria-label": "Network topology", "data-topology": "" });
  const links = s("g", { class: "links" });
  const nodes = s("g", { class: "nodes" });
  const dots = s("g", { class: "ports" });
  const wire = ([line, dot]) => { links.append(line); dots.append(dot); };
  for (const n of state.networks) nodes.append(drawBus(n, at.bus.get(n.id), at.width, state.subnets));
  for (const r of state.routers) {
    const pos = at.routers.get(r.id);
    nodes.append(drawBox("router", r, pos, r.name || r.id.slice(0, 8), r.status));
    const gw = r.external_gateway_info;
    const wires = [];
    if (gw?.network_id && at.bus.has(gw.network_id)) {
      wires.push(["gateway", gw.network_id, null, (gw.external_fixed_ips || []).map((ip) => ip.ip_address).join(", ")]);
    }
    for (const p of state.ports.filter((p) => p.device_id === r.id && ROUTER_PORTS.has(p.device_owner))) {
      if (at.bus.has(p.network_id)) wires.push(["router", p.network_id, p.id, p.fixed_ips.map((ip) => ip.ip_address).join(", ")]);
    }
    wires.forEach(([kind, net, port, address], i) =>
      wire(drawLink(kind, r.id, pos, net, at.bus.get(net), port, address, i - (wires.length - 1) / 2)));
  }
  for (const sv of boxes) {
    const pos = at.servers.get(sv.id);
    if (sv.servers) {  // a group: one line to each of its networks
      nodes.append(drawBox("servers", sv, pos, sv.name, sv.status));
      const nets = sv.networks.filter((n) => at.bus.has(n));
      nets.forEach((n, i) => wire(drawLink("servers", sv.id, pos, n, at.bus.get(n), null, "", i - (nets.length - 1) / 2)));
      continue;
    }
    nodes.append(drawBox("server", sv, pos, sv.name || sv.id.slice(0, 8), sv.status));
    const mine = state.ports.filter((p) => p.device_id === sv.id && at.bus.has(p.network_id));
    mine.forEach((p, i) => wire(drawLink("server", sv.id, pos, p.network_id, at.bus.get(p.network_id), p.id,
      p.fixed_ips.map((ip) => ip.ip_address).join(", "), i - (mine.length - 1) / 2)));
  }
  svg.append(links, nodes, dots);
  return svg;
}

export default {
  id: "topology", title: "Network topology", group: "project", order: 68,
  async render(root, ctx) {
    const picture = region(async () => {
      const state = await fetchState(ctx);
      if (!state.networks.length && !state.routers.length && !state.servers.length) {
        return h("p", { class: "empty" }, "No networks, routers or servers yet.");
      }
      return h("div", { class: "topology-scroll" }, draw(state));
    });
    // A click (or Enter) on a shape opens its screen.
    picture.node.addEventListener("click", (ev) => open(ev.target));
    picture.node.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(ev.target); });
    const open = (target) => {
      const shape = target.closest?.("[data-kind]");
      if (!shape || !ctx.navigate) return;
      const kind = shape.dataset.kind;
      if (kind === "server") ctx.navigate("servers", { id: shape.dataset.serverId });
      else if (kind === "servers") ctx.navigate("servers");
      else if (kind === "router") ctx.navigate("routers", { id: shape.dataset.routerId });
      else ctx.navigate("networks", { id: shape.dataset.networkId });
    };
    root.append(screenHead("Network topology"),
      h("p", { class: "hint" }, "External networks on top, routers, your networks, then servers; a dot is a port. Updates live."),
      picture.node);
    await picture.refresh();
    return live(ctx, [{ service: "network" }, { service: "compute", type: "server" }], picture.refresh);
  },
};
