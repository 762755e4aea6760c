// The cluster (admins): every node with its role, health, capacity and use, and how many guests it runs;
// etcd's leader when clustered. From /cloudbox/v1 (nodes, health, cluster/etcd) and Nova's hypervisors.
import { h, screenHead, statusBadge, bar, when } from "../ui.js";
import { live, get, region } from "../more/kit.js";

/** A node as a card: health, role, address, guests, and its use of vCPUs, RAM and disk. */
function nodeCard(node, { here, leader, hypervisor }) {
  const capacity = node.capacity || {};
  const fact = (term, ...value) => [h("dt", null, term), h("dd", null, ...value)];
  return h("article", { class: "card node", "data-node-id": node.id, "data-node-name": node.name, "data-up": String(node.up) },
    h("div", { class: "screen-head" }, h("h3", null, node.name, here ? " (this node)" : ""), statusBadge(node.up ? "UP" : "DOWN")),
    h("dl", null,
      fact("Role", node.role + (leader ? " (etcd leader)" : "")),
      fact("Address", node.address),
      fact("Guests", h("span", { "data-guests": "" }, String(capacity.servers ?? hypervisor?.running_vms ?? 0))),
      fact("Last seen", when(node.heartbeat_at))),
    hypervisor ? h("div", { class: "node-bars" },
      bar(hypervisor.vcpus_used, hypervisor.vcpus, "vCPUs"),
      bar(hypervisor.memory_mb_used, hypervisor.memory_mb, "RAM (MiB)"),
      bar(hypervisor.local_gb_used, hypervisor.local_gb, "Disk (GB)"))
      : h("p", { class: "empty" }, capacity.vcpus === undefined ? "No compute host reported."
        : `${capacity.vcpus} vCPUs, ${capacity.memory_mb} MiB RAM, ${capacity.disk_gb} GB disk`));
}

export default {
  id: "cluster", title: "Cluster", group: "admin", order: 30,
  async render(root, ctx) {
    const view = region(async () => {
      const [{ nodes }, health, etcd, hypervisors] = await Promise.all([
        get(ctx, "cloudbox", "/nodes"), get(ctx, "cloudbox", "/health"), get(ctx, "cloudbox", "/cluster/etcd"),
        get(ctx, "compute", "/os-hypervisors/detail").then((d) => d.hypervisors)]);
      const up = nodes.filter((n) => n.up).length;
      return [
        h("p", { class: "cluster-summary" }, `${nodes.length} node${nodes.length === 1 ? "" : "s"}, ${up} up. `,
          etcd.clustered ? `etcd leader: ${etcd.leader || "none"} (term ${etcd.raft_term ?? "?"}). ` : "A single node (no etcd). ",
          `This page is served by ${health.node} (${health.status}).`),
        h("div", { class: "nodes" }, nodes.map((n) => nodeCard(n, {
          here: n.name === health.node, leader: etcd.leader === n.name,
          hypervisor: hypervisors.find((hv) => hv.hypervisor_hostname === n.name || hv.service?.host === n.name) }))),
      ];
    }, { id: "cluster-nodes" });
    root.append(screenHead("Cluster"), view.node);
    await view.refresh();
    // A node's health or role changed, or a server came or went (guests per node).
    return live(ctx, [{ service: "cluster", type: "node" }, { service: "compute", type: "server" }], view.refresh, 500);
  },
};
