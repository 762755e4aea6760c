// Routers (Neutron L3): create, set or clear the external gateway, add and remove subnet interfaces, delete.
import { h, table, form, confirm, statusBadge, screenHead } from "../ui.js";
import { shortId, button, section, live, get, region, choices, select } from "../more/kit.js";

const N = (path) => `/v2.0${path}`;

export default {
  id: "routers", title: "Routers", group: "project", order: 62,
  async render(root, ctx) {
    let state = { routers: [], networks: [], subnets: [], ports: [] };
    const externals = () => state.networks.filter((n) => n["router:external"]);
    const netName = (id) => state.networks.find((n) => n.id === id)?.name || id;
    const subnetLabel = (sn) => `${netName(sn.network_id)}: ${sn.name ? sn.name + " " : ""}${sn.cidr}`;
    const put = async (router, action, body) => {
      await ctx.api("PUT", ctx.url("network", N(`/routers/${router.id}${action}`)), body);
      await list.refresh();
    };
    const interfaces = (router) => state.ports.filter((p) => p.device_id === router.id).flatMap((p) =>
      p.fixed_ips.map((ip) => ({ port: p, ip, subnet: state.subnets.find((sn) => sn.id === ip.subnet_id) })));

    const gatewayCell = (router) => {
      const gw = router.external_gateway_info;
      const picker = select(choices(externals(), (n) => n.name || n.id, "(none)"), gw?.network_id || "",
        { "aria-label": `External gateway of ${router.name || router.id}` });
      return h("div", null,
        gw ? h("div", null, netName(gw.network_id), " ", (gw.external_fixed_ips || []).map((ip) => ip.ip_address).join(", ")) : "none",
        h("div", { class: "buttons" }, picker, button("Set gateway", () =>
          put(router, "", { router: { external_gateway_info: picker.value ? { network_id: picker.value } : {} } }))));
    };

    const interfaceCell = (router) => {
      const attached = interfaces(router);
      const used = new Set(attached.map((a) => a.ip.subnet_id));
      const free = state.subnets.filter((sn) => !used.has(sn.id) && !externals().some((n) => n.id === sn.network_id));
      const picker = select(free.map((sn) => ({ value: sn.id, label: subnetLabel(sn) })), "",
        { "aria-label": `Subnet to attach to ${router.name || router.id}`, name: "subnet" });
      return h("div", null,
        h("ul", { class: "plain" }, attached.map((a) => h("li", { "data-port-id": a.port.id, "data-subnet-id": a.ip.subnet_id },
          a.subnet ? subnetLabel(a.subnet) : a.ip.subnet_id, ` (${a.ip.ip_address}) `,
          button("Remove", () => put(router, "/remove_router_interface", { subnet_id: a.ip.subnet_id }),
            { class: "small danger", "aria-label": `Remove interface ${a.ip.ip_address}` })))),
        free.length ? h("div", { class: "buttons" }, picker,
          button("Add interface", () => put(router, "/add_router_interface", { subnet_id: picker.value }),
            { "data-action": "add-interface" })) : null);
    };

    const list = region(async () => {
      const [{ routers }, { networks }, { subnets }, { ports }] = await Promise.all([
        get(ctx, "network", N("/routers")), get(ctx, "network", N("/networks")), get(ctx, "network", N("/subnets")),
        get(ctx, "network", N("/ports?device_owner=network:router_interface"))]);
      state = { routers, networks, subnets, ports };
      gateway.replaceChildren(...select(choices(externals(), (n) => n.name || n.id, "(no gateway)"), gateway.value).children);
      return table([
        { label: "Name", value: (r) => h("strong", null, r.name || "(no name)") },
        { label: "ID", value: (r) => shortId(r.id) },
        { label: "Status", value: (r) => statusBadge(r.status) },
        { label: "External gateway", value: gatewayCell },
        { label: "Interfaces", value: interfaceCell },
        { label: "", value: (r) => button("Delete", async () => {
            if (!(await confirm(`Delete router ${r.name || r.id}? Remove its interfaces first.`))) return;
            await ctx.api("DELETE", ctx.url("network", N(`/routers/${r.id}`)));
            await list.refresh();
          }, { class: "danger", "aria-label": `Delete router ${r.name || r.id}` }) },
      ], state.routers, { empty: "No routers.", key: (r) => r.id });
    });

    const createForm = form([
      { name: "name", label: "Router name", required: true },
      { name: "gateway", label: "External network", type: "select", options: [] },
    ], async (v, el) => {
      const router = { name: v.name.trim(), admin_state_up: true };
      if (v.gateway) router.external_gateway_info = { network_id: v.gateway };
      await ctx.api("POST", ctx.url("network", N("/routers")), { router });
      el.reset();
      await list.refresh();
    }, { submit: "Create router" });
    createForm.id = "router-create";
    const gateway = createForm.elements.gateway;

    root.append(screenHead("Routers"), section("Create a router", createForm), section("Routers", list.node));
    await list.refresh();
    return live(ctx, [{ service: "network" }], list.refresh);
  },
};
