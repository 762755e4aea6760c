// Images: the list, upload from the browser with a progress bar (XMLHttpRequest's upload progress
// on Glance's PUT /file), sharing with other projects (members) and custom properties.

const PATCH = { "Content-Type": "application/openstack-images-v2.1-json-patch" };
// Glance's own fields: everything else on an image is a custom property.
const CORE = new Set(["id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo", "os_hash_value",
  "owner", "size", "virtual_size", "min_ram", "min_disk", "created_at", "updated_at", "disk_format", "container_format",
  "tags", "self", "file", "schema", "direct_url", "locations", "os_hidden", "stores"]);
const DISK_FORMATS = ["qcow2", "raw", "iso", "vmdk", "vdi", "vhd", "vhdx", "ami", "ari", "aki", "ploop"];

/** "key=value" lines into an object (blank lines skipped); an error names a bad line. */
export function parseProperties(text) {
  const props = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`Line ${i + 1} is not key=value: ${line}`);
    props[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return props;
}

export default {
  id: "images",
  title: "Images",
  group: "project",
  order: 30,
  async render(root, ctx) {
    const { h, table, form, dialog, confirm, statusBadge, showError, bytes } = ctx.ui;
    const imagesUrl = ctx.url("image", "/images");
    const project = ctx.session.project && ctx.session.project.id;
    const listArea = h("div", { id: "image-list" });
    const uploads = h("div", { class: "uploads", id: "uploads" });
    let closed = false;

    let reads = 0; // lists read at once may answer out of order: only the newest is drawn

    async function refresh() {
      const seq = ++reads;
      const [mine, pending] = await Promise.all([
        ctx.api("GET", `${imagesUrl}?limit=1000`).then((r) => r.data.images),
        ctx.api("GET", `${imagesUrl}?visibility=shared&member_status=pending&limit=1000`).then((r) => r.data.images).catch(() => []),
      ]);
      const seen = new Set(mine.map((i) => i.id));
      const rows = [...mine, ...pending.filter((i) => !seen.has(i.id)).map((i) => ({ ...i, pendingForMe: true }))];
      if (closed || seq !== reads) return;
      listArea.replaceChildren(table([
        { label: "Name", value: (i) => i.name || i.id },
        { label: "Status", value: (i) => statusBadge(i.status) },
        { label: "Visibility", value: (i) => i.visibility + (i.pendingForMe ? " (offered to you)" : "") },
        { label: "Format", value: (i) => i.disk_format || "" },
        { label: "Size", value: (i) => bytes(i.size) },
        { label: "Actions", value: (i) => actions(i) },
      ], rows, { empty: "No images yet.", key: (i) => i.id }));
    }

    function actions(image) {
      const buttons = [];
      const mine = image.owner === project;
      if (image.pendingForMe || (!mine && image.visibility === "shared")) {
        buttons.push(h("button", { type: "button", onclick: () => answer(image, "accepted") }, "Accept"),
          h("button", { type: "button", onclick: () => answer(image, "rejected") }, "Reject"));
      }
      if (mine || ctx.session.isAdmin) {
        buttons.push(h("button", { type: "button", "data-action": "properties", onclick: () => propertiesDialog(image) }, "Properties…"));
        if (image.visibility === "shared" || image.visibility === "private") {
          buttons.push(h("button", { type: "button", "data-action": "share", onclick: () => shareDialog(image).catch(showError) }, "Sharing…"));
        }
        buttons.push(h("button", { type: "button", class: "danger", onclick: () => remove(image) }, "Delete"));
      }
      return h("div", { class: "buttons" }, buttons);
    }

    async function answer(image, status) {
      try {
        await ctx.api("PUT", `${imagesUrl}/${image.id}/members/${project}`, { status });
        await refresh();
      } catch (err) { showError(err); }
    }

    async function remove(image) {
      if (!(await confirm(`Delete image ${image.name || image.id}?`, { yes: "Delete" }))) return;
      try { await ctx.api("DELETE", `${imagesUrl}/${image.id}`); await refresh(); } catch (err) { showError(err); }
    }

    function uploadDialog() {
      const d = dialog("Upload an image", form([
        { name: "file", label: "Image file", type: "file", required: true },
        { name: "name", label: "Name", help: "Empty: the file's name." },
        { name: "disk_format", label: "Disk format", type: "select", value: "qcow2",
          options: DISK_FORMATS.map((f) => ({ value: f, label: f })) },
        { name: "visibility", label: "Visibility", type: "select", value: "private",
          options: ["private", "shared", "community", "public"].map((v) => ({ value: v, label: v })) },
        { name: "min_disk", label: "Minimum disk (GB)", type: "number", value: "0", min: 0 },
        { name: "min_ram", label: "Minimum RAM (MiB)", type: "number", value: "0", min: 0 },
        { name: "properties", label: "Properties", type: "textarea", rows: 3, placeholder: "os_distro=debian\nhw_disk_bus=virtio" },
      ], async (v) => {
        if (!v.file) throw new Error("Choose the file to upload.");
        const body = { name: v.name || v.file.name, disk_format: v.disk_format, container_format: "bare",
          visibility: v.visibility, min_disk: Number(v.min_disk || 0), min_ram: Number(v.min_ram || 0), ...parseProperties(v.properties) };
        const image = (await ctx.api("POST", imagesUrl, body)).data;
        d.close();
        await refresh();
        await sendFile(image, v.file);
      }, { submit: "Upload" }));
    }

    /** The upload itself, with its bar on the screen; Glance answers 204 when it has the data. */
    async function sendFile(image, file) {
      const bar = ctx.ui.progress(`Uploading ${image.name}`);
      bar.el.dataset.image = image.id;
      uploads.append(bar.el);
      try {
        await ctx.upload("PUT", `${imagesUrl}/${image.id}/file`, file, { "Content-Type": "application/octet-stream" },
          (done, total) => bar.set(done, total));
        bar.finish(`${image.name}: uploaded ${bytes(file.size)}`);
        await refresh();
      } catch (err) {
        bar.fail(err);
        showError(err);
      }
    }

    async function shareDialog(image) {
      const membersUrl = `${imagesUrl}/${image.id}/members`;
      const list = h("div", { id: "image-members" });
      const load = async () => {
        const members = (await ctx.api("GET", membersUrl)).data.members;
        list.replaceChildren(table([
          { label: "Project", value: (m) => h("span", { class: "mono" }, m.member_id) },
          { label: "Status", value: (m) => m.status },
          { label: "", value: (m) => h("button", { type: "button", class: "danger", onclick: async () => {
            try { await ctx.api("DELETE", `${membersUrl}/${m.member_id}`); await load(); } catch (err) { d.showError(err); }
          } }, "Remove") },
        ], members, { empty: "Not shared with any project." }));
      };
      const add = form([{ name: "member", label: "Project ID to share with", required: true }], async (v) => {
        if (image.visibility !== "shared") {
          await ctx.api("PATCH", `${imagesUrl}/${image.id}`, [{ op: "replace", path: "/visibility", value: "shared" }], PATCH);
          image.visibility = "shared";
        }
        await ctx.api("POST", membersUrl, { member: v.member.trim() });
        add.reset();
        await load();
      }, { submit: "Share" });
      const d = dialog(`Sharing of ${image.name || image.id}`, h("div", null, list, add), [{ label: "Done", primary: true }]);
      d.el.addEventListener("close", () => refresh().catch(showError));
      await load();
    }

    function propertiesDialog(image) {
      // The image service's own os_glance_* properties are shown nowhere and never patched.
      const current = Object.entries(image).filter(([k]) => !CORE.has(k) && k !== "pendingForMe" && !k.startsWith("os_glance_"));
      const text = current.map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join("\n");
      const d = dialog(`Properties of ${image.name || image.id}`, form([
        { name: "properties", label: "Properties (key=value, one a line)", type: "textarea", rows: 8, value: text },
      ], async (v) => {
        const wanted = parseProperties(v.properties);
        const ops = [];
        for (const [k] of current) if (!(k in wanted)) ops.push({ op: "remove", path: `/${k}` });
        for (const [k, value] of Object.entries(wanted)) {
          if (image[k] !== value) ops.push({ op: k in image ? "replace" : "add", path: `/${k}`, value });
        }
        if (ops.length) await ctx.api("PATCH", `${imagesUrl}/${image.id}`, ops, PATCH);
        d.close();
        await refresh();
      }, { submit: "Save" }));
    }

    root.append(ctx.ui.screenHead("Images",
      { label: "Refresh", onClick: () => refresh().catch(showError) },
      { label: "Upload image", primary: true, onClick: uploadDialog }),
    uploads, listArea);
    // Several events come together (an upload changes the image more than once): read once after them.
    let timer = null;
    const refreshSoon = () => { clearTimeout(timer); timer = setTimeout(() => refresh().catch(showError), 200); };
    const offImage = ctx.events.on({ service: "image" }, refreshSoon);
    const offResync = ctx.events.on({ service: "cloudbox", type: "resync" }, refreshSoon);
    await refresh();
    return () => { closed = true; clearTimeout(timer); offImage(); offResync(); };
  },
};
