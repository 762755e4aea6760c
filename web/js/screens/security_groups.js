// Security groups and their rules: create and delete groups, add and remove rules.
import { h, table, form, confirm, screenHead } from "../ui.js";
import { shortId, button, section, live, get, region } from "../more/kit.js";

const N = (path) => `/v2.0${path}`;
const opt = (...values) => values.map(([value, label]) => ({ value, label }));

const portRange = (r) => r.port_range_min === null || r.port_range_min === undefined ? "any"
  : r.port_range_min === r.port_range_max ? String(r.port_range_min) : `${r.port_range_min}-${r.port_range_max}`;

/** The API's body for a rule from the form's values (empty fields left out: "any"). */
function ruleBody(groupId, v) {
  const rule = { security_group_id: groupId, direction: v.direction, ethertype: v.ethertype };
  if (v.protocol) rule.protocol = v.protocol;
  if (v.port_min !== "") rule.port_range_min = Number(v.port_min);
  if (v.port_max !== "" || v.port_min !== "") rule.port_range_max = Number(v.port_max !== "" ? v.port_max : v.port_min);
  if (v.remote_group) rule.remote_group_id = v.remote_group;
  else if (v.remote_ip.trim()) rule.remote_ip_prefix = v.remote_ip.trim();
  return { security_group_rule: rule };
}

export default {
  id: "security_groups", title: "Security groups", group: "project", order: 66,
  async render(root, ctx) {
    let groups = [];
    const groupName = (id) => groups.find((g) => g.id === id)?.name || id;

    const ruleForm = (group) => form([
      { name: "direction", label: "Direction", type: "select", options: opt(["ingress", "ingress"], ["egress", "egress"]), value: "ingress" },
      { name: "ethertype", label: "Ether type", type: "select", options: opt(["IPv4", "IPv4"], ["IPv6", "IPv6"]), value: "IPv4" },
      { name: "protocol", label: "Protocol", type: "select", options: opt(["tcp", "TCP"], ["udp", "UDP"], ["icmp", "ICMP"], ["", "any"]), value: "tcp" },
      { name: "port_min", label: "Port from", type: "number", min: 0, max: 65535 },
      { name: "port_max", label: "Port to", type: "number", min: 0, max: 65535 },
      { name: "remote_ip", label: "Remote CIDR", placeholder: "0.0.0.0/0" },
      { name: "remote_group", label: "or remote group", type: "select", value: "",
        options: [{ value: "", label: "(none)" }, ...groups.map((g) => ({ value: g.id, label: g.name }))] },
    ], async (v, el) => {
      await ctx.api("POST", ctx.url("network", N("/security-group-rules")), ruleBody(group.id, v));
      el.reset();
      await list.refresh();
    }, { submit: "Add rule" });

    const rules = (group) => table([
      { label: "Direction", value: (r) => r.direction },
      { label: "Ether type", value: (r) => r.ethertype },
      { label: "Protocol", value: (r) => r.protocol || "any" },
      { label: "Ports", value: portRange },
      { label: "Remote", value: (r) => r.remote_group_id ? `group ${groupName(r.remote_group_id)}` : r.remote_ip_prefix || "any" },
      { label: "", value: (r) => button("Delete rule", async () => {
          await ctx.api("DELETE", ctx.url("network", N(`/security-group-rules/${r.id}`)));
          await list.refresh();
        }, { class: "small danger" }) },
    ], group.security_group_rules || [], { empty: "No rules: nothing passes.", key: (r) => r.id });

    const list = region(async () => {
      groups = (await get(ctx, "network", N("/security-groups"))).security_groups;
      // A redraw (a live event) keeps the rule forms that were open.
      const open = new Set([...list.node.querySelectorAll("details[open]")].map((d) => d.closest("article").dataset.securityGroupId));
      return groups.map((g) => h("article", { class: "card", "data-security-group-id": g.id },
        h("div", { class: "screen-head" }, h("h3", null, g.name, " ", shortId(g.id)), h("span", null, g.description || ""),
          g.name === "default" ? null : button("Delete group", async () => {
            if (!(await confirm(`Delete security group ${g.name}?`))) return;
            await ctx.api("DELETE", ctx.url("network", N(`/security-groups/${g.id}`)));
            await list.refresh();
          }, { class: "danger" })),
        rules(g),
        h("details", { open: open.has(g.id) }, h("summary", null, "Add a rule"), ruleForm(g))));
    });

    const createForm = form([
      { name: "name", label: "Name", required: true },
      { name: "description", label: "Description" },
    ], async (v, el) => {
      await ctx.api("POST", ctx.url("network", N("/security-groups")),
        { security_group: { name: v.name.trim(), description: v.description } });
      el.reset();
      await list.refresh();
    }, { submit: "Create group" });
    createForm.id = "security-group-create";

    root.append(screenHead("Security groups"), section("Create a security group", createForm),
      section("Security groups", list.node));
    await list.refresh();
    return live(ctx, [{ service: "network" }], list.refresh);
  },
};
