// Networks and their subnets (Neutron v2.0): list, create (with a first subnet), add a subnet, delete.
import { h, table, form, confirm, statusBadge, screenHead, dialog } from "../ui.js";
import { shortId, button, section, live, get, region } from "../more/kit.js";

const N = (path) => `/v2.0${path}`;

async function createSubnet(ctx, networkId, v) {
  const subnet = { network_id: networkId, cidr: v.cidr.trim(), ip_version: Number(v.ip_version || 4),
                   name: v.subnet_name || "", enable_dhcp: v.dhcp !== false };
  const gateway = (v.gateway || "").trim();
  if (gateway === "none") subnet.gateway_ip = null;
  else if (gateway) subnet.gateway_ip = gateway;
  return (await ctx.api("POST", ctx.url("network", N("/subnets")), { subnet })).data.subnet;
}

const SUBNET_FIELDS = [
  { name: "subnet_name", label: "Subnet name" },
  { name: "cidr", label: "CIDR", placeholder: "10.0.0.0/24" },
  { name: "ip_version", label: "IP version", type: "select", options: [{ value: "4", label: "IPv4" }, { value: "6", label: "IPv6" }], value: "4" },
  { name: "gateway", label: "Gateway", placeholder: "first address", help: "Empty: the first address; 'none': no gateway." },
  { name: "dhcp", label: "DHCP", type: "checkbox", value: true },
];

export default {
  id: "networks", title: "Networks", group: "project", order: 60,
  async render(root, ctx) {
    const project = ctx.session.project?.id;
    const mine = (n) => n.project_id === project || ctx.session.isAdmin;
    const remove = (what, path, name) => async () => {
      if (!(await confirm(`Delete ${what} ${name}?`))) return;
      await ctx.api("DELETE", ctx.url("network", N(path)));
      await list.refresh();
    };

    const list = region(async () => {
      const [{ networks }, { subnets }] = await Promise.all([
        get(ctx, "network", N("/networks")), get(ctx, "network", N("/subnets"))]);
      const subnetsOf = (n) => subnets.filter((sn) => sn.network_id === n.id);
      return table([
        { label: "Name", value: (n) => h("strong", null, n.name || "(no name)") },
        { label: "ID", value: (n) => shortId(n.id) },
        { label: "Subnets", value: (n) => h("ul", { class: "plain" }, subnetsOf(n).map((sn) =>
            h("li", { "data-subnet-id": sn.id }, `${sn.name ? sn.name + " " : ""}${sn.cidr}`,
              sn.gateway_ip ? ` gw ${sn.gateway_ip} ` : " (no gateway) ",
              mine(n) ? button("Delete", remove("subnet", `/subnets/${sn.id}`, sn.cidr),
                { class: "small danger", "aria-label": `Delete subnet ${sn.cidr}` }) : null))) },
        { label: "Kind", value: (n) => (n["router:external"] ? "external" : "tenant") + (n.shared ? ", shared" : "") },
        { label: "Status", value: (n) => statusBadge(n.status) },
        { label: "", value: (n) => mine(n) ? h("div", { class: "buttons" },
            button("Add subnet", () => addSubnet(n)),
            button("Delete", remove("network", `/networks/${n.id}`, n.name || n.id),
              { class: "danger", "aria-label": `Delete network ${n.name || n.id}` })) : null },
      ], networks, { empty: "No networks.", key: (n) => n.id });
    });

    const addSubnet = (network) => {
      const d = dialog(`New subnet on ${network.name || network.id}`, form(SUBNET_FIELDS, async (v) => {
        if (!v.cidr.trim()) throw new Error("A subnet needs a CIDR.");
        await createSubnet(ctx, network.id, v);
        d.close();
        await list.refresh();
      }, { submit: "Add subnet" }));
    };

    const createForm = form([
      { name: "name", label: "Network name", required: true },
      ...(ctx.session.isAdmin ? [{ name: "shared", label: "Shared with every project", type: "checkbox" },
                                 { name: "external", label: "External (router gateways, floating IPs)", type: "checkbox" }] : []),
      ...SUBNET_FIELDS,
    ], async (v, el) => {
      const network = { name: v.name.trim(), admin_state_up: true };
      if (v.shared) network.shared = true;
      if (v.external) network["router:external"] = true;
      const made = (await ctx.api("POST", ctx.url("network", N("/networks")), { network })).data.network;
      el.reset();
      await list.refresh();
      if (!v.cidr.trim()) return;
      try {
        await createSubnet(ctx, made.id, v);
      } catch (err) {  // the network stays: say so, so a second submit does not make another
        throw new Error(`Network ${made.name} was created, but its subnet was refused: ${err.message} ` +
                        "Add a subnet to it from the list.");
      } finally { await list.refresh(); }
    }, { submit: "Create network" });
    createForm.id = "network-create";

    root.append(screenHead("Networks"), section("Create a network", createForm), section("Networks", list.node));
    await list.refresh();
    return live(ctx, [{ service: "network" }], list.refresh);
  },
};
