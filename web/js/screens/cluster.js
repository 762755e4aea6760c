// The cluster (admins): every node with its role, health, capacity and use, and how many guests it runs;
// etcd's leader when clustered. From /cloudbox/v1 (nodes, health, cluster/etcd) and Nova's hypervisors.
import { h, table, screenHead, statusBadge, bar, when } from "../ui.js";
import { section, live, get, region } from "../more/kit.js";

export default {
  id: "cluster", title: "Cluster", group: "admin", order: 30,
  async render(root, ctx) {
    const view = region(async () => {
      const [{ nodes }, health, etcd, hypervisors] = await Promise.all([
        get(ctx, "cloudbox", "/nodes"), get(ctx, "cloudbox", "/health"), get(ctx, "cloudbox", "/cluster/etcd"),
        get(ctx, "compute", "/os-hypervisors/detail").then((d) => d.hypervisors)]);
      const hvOf = (node) => hypervisors.find((hv) => hv.hypervisor_hostname === node.name || hv.service?.host === node.name);
      const up = nodes.filter((n) => n.up).length;
      const summary = h("p", { class: "cluster-summary" },
        `${nodes.length} node${nodes.length === 1 ? "" : "s"}, ${up} up. `,
        etcd.clustered ? `etcd leader: ${etcd.leader || "none"} (term ${etcd.raft_term ?? "?"}). ` : "A single node (no etcd). ",
        `This page is served by ${health.node} (${health.status}).`);
      return [summary, table([
        { label: "Node", value: (n) => h("strong", { "data-node-name": n.name }, n.name, n.name === health.node ? " (this node)" : "") },
        { label: "Role", value: (n) => n.role + (etcd.leader && etcd.leader === n.name ? " (leader)" : "") },
        { label: "Health", value: (n) => statusBadge(n.up ? "UP" : "DOWN") },
        { label: "Address", value: (n) => n.address },
        { label: "vCPUs", value: (n) => {
            const hv = hvOf(n);
            return hv ? bar(hv.vcpus_used, hv.vcpus, "vCPUs") : n.capacity?.vcpus ?? "";
          } },
        { label: "RAM", value: (n) => {
            const hv = hvOf(n);
            return hv ? bar(hv.memory_mb_used, hv.memory_mb, "RAM MiB") : n.capacity?.memory_mb ?? "";
          } },
        { label: "Disk", value: (n) => {
            const hv = hvOf(n);
            return hv ? bar(hv.local_gb_used, hv.local_gb, "Disk GB") : n.capacity?.disk_gb ?? "";
          } },
        { label: "Guests", value: (n) => h("span", { "data-guests": "" }, String(n.capacity?.servers ?? hvOf(n)?.running_vms ?? 0)) },
        { label: "Last seen", value: (n) => when(n.heartbeat_at) },
      ], nodes, { key: (n) => n.id, empty: "No nodes." })];
    }, { id: "cluster-nodes" });
    root.append(screenHead("Cluster"), section("Nodes", view.node));
    await view.refresh();
    // A node's health or role changed, or a server came or went (guests per node).
    return live(ctx, [{ service: "cluster", type: "node" }, { service: "compute", type: "server" }], view.refresh, 500);
  },
};
