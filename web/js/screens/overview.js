// Overview: the project's usage against its quotas, from the same calls the CLI makes
// (compute and volume limits, Neutron's quota details).

/** Each source of usage: what it asks and the bars it gives; a service not in the catalog is left out. */
const SOURCES = [
  {
    service: "compute",
    async read(ctx) {
      const a = (await ctx.api("GET", ctx.url("compute", "/limits"))).data.limits.absolute;
      return [
        ["Servers", a.totalInstancesUsed, a.maxTotalInstances],
        ["vCPUs", a.totalCoresUsed, a.maxTotalCores],
        ["RAM (MiB)", a.totalRAMUsed, a.maxTotalRAMSize],
      ];
    },
  },
  {
    service: "volumev3",
    async read(ctx) {
      const a = (await ctx.api("GET", ctx.url("volumev3", "/limits"))).data.limits.absolute;
      return [
        ["Volumes", a.totalVolumesUsed, a.maxTotalVolumes],
        ["Volume storage (GiB)", a.totalGigabytesUsed, a.maxTotalVolumeGigabytes],
        ["Volume snapshots", a.totalSnapshotsUsed, a.maxTotalSnapshots],
      ];
    },
  },
  {
    service: "network",
    async read(ctx) {
      const project = ctx.session.project.id;
      const q = (await ctx.api("GET", ctx.url("network", `/v2.0/quotas/${project}/details`))).data.quota;
      const row = (label, key) => (q[key] ? [label, q[key].used, q[key].limit] : null);
      return [row("Floating IPs", "floatingip"), row("Networks", "network"), row("Security groups", "security_group")]
        .filter(Boolean);
    },
  },
];

export default {
  id: "overview",
  title: "Overview",
  group: "project",
  order: 10,
  async render(root, ctx) {
    const { h, bar } = ctx.ui;
    const s = ctx.session;
    root.append(ctx.ui.screenHead("Overview"));
    if (!s.project) {
      root.append(h("p", null, "This token has no project: choose one in the project switcher."));
      return undefined;
    }
    const bars = h("div", { class: "bars", id: "quota-bars" });
    const problems = h("div", { class: "problems" });
    root.append(
      h("p", null, `Project ${s.project.name} · signed in as ${s.user.name} · roles: ${s.roles.join(", ") || "none"}`),
      h("h2", null, "Usage against quotas"), bars, problems);
    const available = SOURCES.filter((src) => ctx.hasService(src.service));
    const results = await Promise.allSettled(available.map((src) => src.read(ctx)));
    results.forEach((result, i) => {
      if (result.status === "fulfilled") {
        for (const [label, used, limit] of result.value) bars.append(bar(used ?? 0, limit, label));
      } else {
        problems.append(h("p", { class: "error", role: "alert" }, `${available[i].service}: ${ctx.ui.messageOf(result.reason)}`));
      }
    });
    return undefined;
  },
};
