// Administration of compute and quotas: flavors (create, delete, which projects may use a private one),
// every project's quotas of compute, network and volumes (usage against limit, edit), hypervisors.
import { h, table, form, confirm, bar, bytes } from "../ui.js";
import { shortId, button, section, get, live, region, tabbedScreen, choices, select } from "../more/kit.js";

const ALL_FLAVORS = "/flavors/detail?is_public=None";

function flavorAccess(ctx, flavor, projects) {
  const who = region(async () => {
    const access = (await get(ctx, "compute", `/flavors/${flavor.id}/os-flavor-access`)).flavor_access;
    const name = (id) => projects.find((p) => p.id === id)?.name || id;
    const act = (action, tenant) => ctx.api("POST", ctx.url("compute", `/flavors/${flavor.id}/action`), { [action]: { tenant } })
      .then(who.refresh);
    const picker = select(choices(projects.filter((p) => !access.some((a) => a.tenant_id === p.id)), (p) => p.name), "",
      { "aria-label": `Project to give ${flavor.name}` });
    return [
      h("ul", { class: "plain" }, access.map((a) => h("li", { "data-project-id": a.tenant_id }, name(a.tenant_id), " ",
        button("Remove", () => act("removeTenantAccess", a.tenant_id), { class: "small danger" })))),
      picker.options.length ? h("div", { class: "buttons" }, picker, button("Give access", () => act("addTenantAccess", picker.value))) : null,
    ];
  });
  who.refresh();
  return who.node;
}

function flavorsTab(ctx) {
  return async (pane) => {
    const rows = region(async () => {
      const [flavors, projects] = await Promise.all([
        get(ctx, "compute", ALL_FLAVORS).then((d) => d.flavors),
        get(ctx, "identity", "/projects").then((d) => d.projects)]);
      return table([
        { label: "Name", value: (f) => h("strong", null, f.name) },
        { label: "ID", value: (f) => shortId(f.id) },
        { label: "vCPUs", value: (f) => String(f.vcpus) },
        { label: "RAM", value: (f) => bytes(f.ram * 1048576) },
        { label: "Disk", value: (f) => `${f.disk} GB` },
        { label: "Public", value: (f) => f["os-flavor-access:is_public"] ? "yes" : "no" },
        { label: "Access", value: (f) => f["os-flavor-access:is_public"] ? "every project" : flavorAccess(ctx, f, projects) },
        { label: "", value: (f) => button("Delete", async () => {
            if (!(await confirm(`Delete flavor ${f.name}? Servers of it keep running.`))) return;
            await ctx.api("DELETE", ctx.url("compute", `/flavors/${f.id}`));
            await rows.refresh();
          }, { class: "danger", "aria-label": `Delete flavor ${f.name}` }) },
      ], flavors, { key: (f) => f.id });
    });
    const create = form([
      { name: "name", label: "Name", required: true },
      { name: "vcpus", label: "vCPUs", type: "number", min: 1, value: "1", required: true },
      { name: "ram", label: "RAM (MiB)", type: "number", min: 1, value: "512", required: true },
      { name: "disk", label: "Disk (GB)", type: "number", min: 0, value: "1", required: true },
      { name: "id", label: "ID", placeholder: "automatic" },
      { name: "public", label: "Public", type: "checkbox", value: true },
    ], async (v, el) => {
      const flavor = { name: v.name.trim(), vcpus: Number(v.vcpus), ram: Number(v.ram), disk: Number(v.disk),
                       "os-flavor-access:is_public": v.public };
      if (v.id.trim()) flavor.id = v.id.trim();
      await ctx.api("POST", ctx.url("compute", "/flavors"), { flavor });
      el.reset();
      await rows.refresh();
    }, { submit: "Create flavor" });
    create.id = "flavor-create";
    pane.append(section("Create a flavor", create), section("Flavors", rows.node));
    await rows.refresh();
    return live(ctx, [{ service: "compute", type: "flavor" }], rows.refresh);
  };
}

// Each service's quotas: where to read them with usage, how to write them, and how to read an entry.
const QUOTAS = [
  { service: "compute", title: "Compute", read: (p) => `/os-quota-sets/${p}/detail`, write: (p) => `/os-quota-sets/${p}`,
    body: "quota_set" },
  { service: "network", title: "Network", read: (p) => `/v2.0/quotas/${p}/details`, write: (p) => `/v2.0/quotas/${p}`,
    body: "quota" },
  { service: "block-storage", title: "Volumes", read: (p) => `/os-quota-sets/${p}?usage=true`, write: (p) => `/os-quota-sets/${p}`,
    body: "quota_set" },
];

function quotaSection(ctx, kind, projectId) {
  const part = region(async () => {
    const reply = await get(ctx, kind.service, kind.read(projectId));
    const entries = Object.entries(reply[kind.body] || reply.quota_set || {})
      .filter(([key, value]) => key !== "id" && value !== null && typeof value === "object");
    const fields = entries.map(([key, value]) => {
      const input = h("input", { type: "number", name: key, min: -1, value: String(value.limit), "aria-label": `${kind.title} ${key} limit` });
      return h("div", { class: "quota", "data-quota": key }, bar(value.in_use ?? value.used ?? 0, value.limit, key), input);
    });
    const save = button("Save", async () => {
      const changed = {};
      for (const [key, value] of entries) {
        const input = part.node.querySelector(`input[name="${key}"]`);
        if (Number(input.value) !== value.limit) changed[key] = Number(input.value);
      }
      if (!Object.keys(changed).length) return;
      await ctx.api("PUT", ctx.url(kind.service, kind.write(projectId)), { [kind.body]: changed });
      await part.refresh();
    }, { class: "primary", "data-action": `save-${kind.service}` });
    return section(kind.title, h("div", { class: "quotas" }, fields), h("div", { class: "buttons" }, save));
  }, { "data-service": kind.service });
  part.refresh();
  return part.node;
}

function quotasTab(ctx) {
  return async (pane) => {
    const projects = (await get(ctx, "identity", "/projects")).projects;
    const current = ctx.session.project?.id || projects[0]?.id || "";
    const picker = select(choices(projects, (p) => p.name), current, { id: "quota-project", "aria-label": "Project" });
    const parts = h("div", { class: "quota-parts" });
    const show = () => parts.replaceChildren(...QUOTAS.filter((k) => ctx.hasService ? ctx.hasService(k.service) : true)
      .map((k) => quotaSection(ctx, k, picker.value)));
    picker.addEventListener("change", show);
    pane.append(h("label", null, "Project ", picker), parts);
    show();
  };
}

function hypervisorsTab(ctx) {
  return async (pane) => {
    const rows = region(async () => table([
      { label: "Host", value: (hv) => h("strong", null, hv.hypervisor_hostname) },
      { label: "Type", value: (hv) => hv.hypervisor_type },
      { label: "State", value: (hv) => `${hv.state} / ${hv.status}` },
      { label: "vCPUs", value: (hv) => bar(hv.vcpus_used, hv.vcpus, "vCPUs") },
      { label: "RAM", value: (hv) => bar(hv.memory_mb_used, hv.memory_mb, "RAM MiB") },
      { label: "Disk", value: (hv) => bar(hv.local_gb_used, hv.local_gb, "Disk GB") },
      { label: "Servers", value: (hv) => String(hv.running_vms) },
    ], (await get(ctx, "compute", "/os-hypervisors/detail")).hypervisors, { key: (hv) => String(hv.id) }));
    pane.append(section("Hypervisors", rows.node));
    await rows.refresh();
    return live(ctx, [{ service: "compute", type: "hypervisor" }, { service: "compute", type: "server" }], rows.refresh);
  };
}

export default tabbedScreen({ id: "admin_compute", title: "Flavors and quotas", group: "admin", order: 20,
                              heading: "Flavors, quotas and hypervisors" }, (ctx) => [
  { id: "flavors", title: "Flavors", render: flavorsTab(ctx) },
  { id: "quotas", title: "Quotas", render: quotasTab(ctx) },
  { id: "hypervisors", title: "Hypervisors", render: hypervisorsTab(ctx) },
]);
