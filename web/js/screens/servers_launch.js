// The servers screen's launch form: name, image or volume, flavor, networks, security groups,
// key pair, user data, count; it says what does not fit the project's quota before it is sent.
// (A helper module of servers.js, not a screen of its own.)

export const NOVA = { "OpenStack-API-Version": "compute 2.96" };

/** Base64 of text as UTF-8 (btoa alone takes Latin-1 only). */
export function base64Utf8(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const unlimited = (n) => n === undefined || n === null || n < 0;

/** What a launch of `count` servers of `flavor` would exceed, from compute's absolute limits:
 * a list of sentences, empty when it fits. Pure, so it is the same before and after sending. */
export function quotaProblems(limits, flavor, count) {
  if (!limits || !flavor || !(count > 0)) return [];
  const rows = [
    ["servers", count, limits.maxTotalInstances, limits.totalInstancesUsed, ""],
    ["vCPUs", flavor.vcpus * count, limits.maxTotalCores, limits.totalCoresUsed, ""],
    ["RAM", flavor.ram * count, limits.maxTotalRAMSize, limits.totalRAMUsed, " MiB"],
  ];
  const problems = [];
  for (const [what, wanted, limit, used, unit] of rows) {
    if (unlimited(limit)) continue;
    const free = Math.max(limit - (used || 0), 0);
    if (wanted > free) problems.push(`${wanted}${unit} ${what} asked, ${free}${unit} left of the quota of ${limit}${unit}.`);
  }
  return problems;
}

async function optional(promise, fallback) {
  try { return await promise; } catch { return fallback; }
}

/** Read what the form offers: images, bootable volumes, flavors, networks, groups, key pairs, limits. */
async function choices(ctx) {
  const get = async (service, path, headers) => (await ctx.api("GET", ctx.url(service, path), null, headers)).data;
  const [images, volumes, flavors, networks, groups, keypairs, limits] = await Promise.all([
    get("image", "/images?status=active&limit=1000").then((d) => d.images),
    ctx.hasService("volumev3") ? optional(get("volumev3", "/volumes/detail?status=available").then((d) => d.volumes), []) : [],
    get("compute", "/flavors/detail", NOVA).then((d) => d.flavors),
    ctx.hasService("network") ? optional(get("network", "/v2.0/networks").then((d) => d.networks), []) : [],
    ctx.hasService("network")
      ? optional(get("network", `/v2.0/security-groups?project_id=${ctx.session.project.id}`).then((d) => d.security_groups), [])
      : [],
    get("compute", "/os-keypairs", NOVA).then((d) => d.keypairs.map((k) => k.keypair)),
    get("compute", "/limits", NOVA).then((d) => d.limits.absolute),
  ]);
  return { images, volumes: volumes.filter((v) => v.bootable === "true" || v.bootable === true), flavors, networks, groups, keypairs, limits };
}

/** Open the launch dialog; `onLaunched(servers)` is told what was created. */
export async function launchDialog(ctx, onLaunched) {
  const { h, form, dialog } = ctx.ui;
  const c = await choices(ctx);
  const flavorLabel = (f) => `${f.name} (${f.vcpus} vCPU, ${f.ram} MiB, ${f.disk} GB)`;
  const fields = [
    { name: "name", label: "Name", required: true },
    { name: "source", label: "Boot from", type: "select", value: "image",
      options: [{ value: "image", label: "Image" }, { value: "volume", label: "Volume" }] },
    { name: "image", label: "Image", type: "select",
      options: c.images.map((i) => ({ value: i.id, label: i.name || i.id })) },
    { name: "volume", label: "Volume", type: "select",
      options: [{ value: "", label: c.volumes.length ? "(choose)" : "(no bootable volume available)" },
        ...c.volumes.map((v) => ({ value: v.id, label: `${v.name || v.id} (${v.size} GB)` }))] },
    { name: "flavor", label: "Flavor", type: "select", required: true,
      options: [...c.flavors].sort((a, b) => a.ram - b.ram || a.vcpus - b.vcpus).map((f) => ({ value: f.id, label: flavorLabel(f) })) },
    { name: "networks", label: "Networks", type: "select", multiple: true,
      options: c.networks.map((n) => ({ value: n.id, label: n.name || n.id })),
      help: "None chosen: the cloud picks (Nova's \"auto\")." },
    { name: "security_groups", label: "Security groups", type: "select", multiple: true,
      value: c.groups.filter((g) => g.name === "default").map((g) => g.name),
      options: c.groups.map((g) => ({ value: g.name, label: g.name })) },
    { name: "key_name", label: "Key pair", type: "select",
      options: [{ value: "", label: "(none)" }, ...c.keypairs.map((k) => ({ value: k.name, label: k.name }))] },
    { name: "user_data", label: "User data", type: "textarea", rows: 4, placeholder: "#!/bin/sh or #cloud-config …" },
    { name: "count", label: "Count", type: "number", value: "1", min: 1, max: 100, required: true },
  ];
  let d;
  const quota = h("ul", { class: "quota-problems", id: "launch-quota", role: "status", "aria-live": "polite" });
  const launchForm = form(fields, async (v) => {
    const count = Number(v.count);
    const flavor = c.flavors.find((f) => f.id === v.flavor);
    const problems = quotaProblems(c.limits, flavor, count);
    if (problems.length) throw new Error(`This does not fit the quota: ${problems.join(" ")}`);
    const server = { name: v.name, flavorRef: v.flavor, min_count: count, max_count: count,
      networks: v.networks.length ? v.networks.map((id) => ({ uuid: id })) : "auto" };
    if (v.source === "volume") {
      if (!v.volume) throw new Error("Choose the volume to boot from.");
      server.block_device_mapping_v2 = [{ boot_index: 0, uuid: v.volume, source_type: "volume", destination_type: "volume", delete_on_termination: false }];
    } else {
      if (!v.image) throw new Error("Choose an image (or boot from a volume).");
      server.imageRef = v.image;
    }
    if (v.security_groups.length) server.security_groups = v.security_groups.map((name) => ({ name }));
    if (v.key_name) server.key_name = v.key_name;
    if (v.user_data.trim()) server.user_data = base64Utf8(v.user_data);
    const reply = await ctx.api("POST", ctx.url("compute", "/servers"), { server }, NOVA);
    d.close();
    onLaunched(reply.data);
  }, { submit: "Launch" });
  launchForm.id = "launch-form";
  const submit = launchForm.querySelector("button[type=submit]");
  const els = launchForm.elements;
  const sourceRows = { image: els.image.closest(".field"), volume: els.volume.closest(".field") };

  function update() {
    sourceRows.image.hidden = els.source.value !== "image";
    sourceRows.volume.hidden = els.source.value !== "volume";
    const flavor = c.flavors.find((f) => f.id === els.flavor.value);
    const problems = quotaProblems(c.limits, flavor, Number(els.count.value));
    quota.replaceChildren(...problems.map((p) => h("li", null, p)));
    submit.disabled = problems.length > 0;
    submit.title = problems.length ? "This launch does not fit the project's quota." : "";
  }
  launchForm.addEventListener("input", update);
  launchForm.addEventListener("change", update);
  launchForm.insertBefore(quota, launchForm.querySelector(".error"));
  d = dialog("Launch servers", launchForm);
  update();
  return d;
}
