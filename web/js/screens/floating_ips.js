// Floating IPs: allocate from an external network, associate with a server's port, disassociate, release.
import { h, table, confirm, statusBadge, screenHead } from "../ui.js";
import { shortId, button, section, live, get, region, choices, select } from "../more/kit.js";

const N = (path) => `/v2.0${path}`;

export default {
  id: "floating_ips", title: "Floating IPs", group: "project", order: 64,
  async render(root, ctx) {
    let state = { networks: [], ports: [], servers: [] };
    const netName = (id) => state.networks.find((n) => n.id === id)?.name || id;
    const serverName = (id) => state.servers.find((sv) => sv.id === id)?.name || id;
    const update = async (fip, body) => {
      await ctx.api("PUT", ctx.url("network", N(`/floatingips/${fip.id}`)), { floatingip: body });
      await list.refresh();
    };
    // Where a floating IP can go: the IPv4 addresses of servers' ports.
    const targets = () => state.ports.filter((p) => (p.device_owner || "").startsWith("compute:"))
      .flatMap((p) => p.fixed_ips.filter((ip) => !ip.ip_address.includes(":")).map((ip) => ({
        value: `${p.id} ${ip.ip_address}`, label: `${serverName(p.device_id)}: ${ip.ip_address} (${netName(p.network_id)})` })));

    const mappedCell = (fip) => {
      if (fip.port_id) {
        const port = state.ports.find((p) => p.id === fip.port_id);
        return h("div", { "data-port-id": fip.port_id }, port ? `${serverName(port.device_id)} ` : "",
          h("code", null, fip.fixed_ip_address || ""), " ",
          button("Disassociate", () => update(fip, { port_id: null })));
      }
      const options = targets();
      if (!options.length) return "no server ports to map to";
      const picker = select(options, "", { "aria-label": `Port for ${fip.floating_ip_address}` });
      return h("div", { class: "buttons" }, picker, button("Associate", () => {
        const [portId, address] = picker.value.split(" ");
        return update(fip, { port_id: portId, fixed_ip_address: address });
      }));
    };

    const list = region(async () => {
      const [{ floatingips }, { networks }, { ports }, servers] = await Promise.all([
        get(ctx, "network", N("/floatingips")), get(ctx, "network", N("/networks")), get(ctx, "network", N("/ports")),
        get(ctx, "compute", "/servers").then((d) => d.servers)]);
      state = { networks, ports, servers };
      pool.replaceChildren(...select(choices(networks.filter((n) => n["router:external"]), (n) => n.name || n.id), pool.value).children);
      return table([
        { label: "Address", value: (f) => h("strong", null, f.floating_ip_address) },
        { label: "ID", value: (f) => shortId(f.id) },
        { label: "Pool", value: (f) => netName(f.floating_network_id) },
        { label: "Status", value: (f) => statusBadge(f.status) },
        { label: "Mapped to", value: mappedCell },
        { label: "", value: (f) => button("Release", async () => {
            if (!(await confirm(`Release ${f.floating_ip_address}?`))) return;
            await ctx.api("DELETE", ctx.url("network", N(`/floatingips/${f.id}`)));
            await list.refresh();
          }, { class: "danger", "aria-label": `Release ${f.floating_ip_address}` }) },
      ], floatingips, { empty: "No floating IPs allocated.", key: (f) => f.id });
    });

    const pool = h("select", { name: "pool", "aria-label": "Pool" });
    const allocate = button("Allocate IP", async () => {
      if (!pool.value) throw new Error("There is no external network to allocate from.");
      await ctx.api("POST", ctx.url("network", N("/floatingips")), { floatingip: { floating_network_id: pool.value } });
      await list.refresh();
    }, { class: "primary" });

    root.append(screenHead("Floating IPs"),
      section("Allocate", h("div", { class: "buttons" }, h("label", null, "Pool ", pool), allocate)),
      section("Floating IPs", list.node));
    await list.refresh();
    return live(ctx, [{ service: "network" }, { service: "compute", type: "server" }], list.refresh);
  },
};
