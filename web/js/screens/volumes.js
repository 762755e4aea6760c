// Volumes, their snapshots and their backups (Cinder v3), with live status from ctx.events.

export default {
  id: "volumes",
  title: "Volumes",
  group: "project",
  order: 40,
  async render(root, ctx) {
    const { h, table, form, dialog, confirm, statusBadge, showError, when } = ctx.ui;
    const url = (path) => ctx.url("volumev3", path);
    const get = async (path) => (await ctx.api("GET", url(path))).data;
    const volumesArea = h("div", { id: "volume-list" });
    const snapshotsArea = h("div", { id: "snapshot-list" });
    const backupsArea = h("div", { id: "backup-list" });
    let volumes = [];
    let closed = false;
    let timer = null;

    let reads = 0; // lists read at once may answer out of order: only the newest is drawn

    async function refresh() {
      const seq = ++reads;
      const [v, s, b] = await Promise.all([
        get("/volumes/detail").then((d) => d.volumes),
        get("/snapshots/detail").then((d) => d.snapshots),
        get("/backups/detail").then((d) => d.backups).catch(() => []),
      ]);
      if (closed || seq !== reads) return;
      volumes = v;
      const nameOf = (id) => { const vol = volumes.find((x) => x.id === id); return vol ? (vol.name || vol.id) : id; };
      volumesArea.replaceChildren(table([
        { label: "Name", value: (x) => x.name || x.id },
        { label: "Size", value: (x) => `${x.size} GB` },
        { label: "Status", value: (x) => statusBadge(x.status) },
        { label: "Attached to", value: (x) => (x.attachments || []).map((a) => `${a.server_id.slice(0, 8)} ${a.device || ""}`).join(", ") },
        { label: "Bootable", value: (x) => (String(x.bootable) === "true" ? "yes" : "no") },
        { label: "Actions", value: (x) => ctx.ui.buttons([
          { label: "Extend…", onClick: () => extendDialog(x) },
          { label: "Snapshot…", onClick: () => snapshotDialog(x) },
          { label: "Back up…", onClick: () => backupDialog(x) },
          { label: "Delete", danger: true, onClick: () => removeThing("volume", x, `/volumes/${x.id}`) },
        ]) },
      ], volumes, { empty: "No volumes yet.", key: (x) => x.id }));
      // Snapshots and backups show the same facts of a copy of a volume; only their actions differ.
      const copies = (actions) => [
        { label: "Name", value: (x) => x.name || x.id },
        { label: "Volume", value: (x) => nameOf(x.volume_id) },
        { label: "Size", value: (x) => `${x.size} GB` },
        { label: "Status", value: (x) => statusBadge(x.status) },
        { label: "Created", value: (x) => when(x.created_at) },
        { label: "Actions", value: (x) => ctx.ui.buttons(actions(x)) },
      ];
      snapshotsArea.replaceChildren(table(copies((x) => [
        { label: "New volume", onClick: () => createDialog({ snapshot: x }) },
        { label: "Delete", danger: true, onClick: () => removeThing("snapshot", x, `/snapshots/${x.id}`) },
      ]), s, { empty: "No snapshots.", key: (x) => x.id }));
      backupsArea.replaceChildren(table(copies((x) => [
        { label: "Restore", onClick: () => restore(x) },
        { label: "Delete", danger: true, onClick: () => removeThing("backup", x, `/backups/${x.id}`) },
      ]), b, { empty: "No backups.", key: (x) => x.id }));
    }

    // Several events arrive together (a volume and its snapshot): read once after them.
    function refreshSoon() {
      clearTimeout(timer);
      timer = setTimeout(() => refresh().catch(showError), 200);
    }

    async function removeThing(kind, thing, path) {
      if (!(await confirm(`Delete ${kind} ${thing.name || thing.id}?`, { yes: "Delete" }))) return;
      try { await ctx.api("DELETE", url(path)); await refresh(); } catch (err) { showError(err); }
    }

    async function createDialog({ snapshot } = {}) {
      const images = snapshot ? [] : (await ctx.api("GET", ctx.url("image", "/images?status=active&limit=1000"))).data.images;
      const fields = [
        { name: "name", label: "Name", required: true },
        { name: "size", label: "Size (GB)", type: "number", min: 1, required: true, value: String(snapshot ? snapshot.size : 1) },
        { name: "description", label: "Description" },
      ];
      if (!snapshot) {
        fields.push({ name: "image", label: "From image", type: "select",
          options: [{ value: "", label: "(empty volume)" }, ...images.map((i) => ({ value: i.id, label: i.name || i.id }))] });
      }
      const d = dialog(snapshot ? `New volume from ${snapshot.name || snapshot.id}` : "Create a volume", form(fields, async (v) => {
        const volume = { name: v.name, size: Number(v.size), description: v.description || undefined };
        if (snapshot) volume.snapshot_id = snapshot.id;
        if (v.image) volume.imageRef = v.image;
        await ctx.api("POST", url("/volumes"), { volume });
        d.close();
        await refresh();
      }, { submit: "Create" }));
    }

    function extendDialog(volume) {
      const d = dialog(`Extend ${volume.name || volume.id}`, form([
        { name: "size", label: "New size (GB)", type: "number", min: volume.size + 1, value: String(volume.size + 1), required: true },
      ], async (v) => {
        await ctx.api("POST", url(`/volumes/${volume.id}/action`), { "os-extend": { new_size: Number(v.size) } });
        d.close();
        await refresh();
      }, { submit: "Extend" }));
    }

    function snapshotDialog(volume) {
      const d = dialog(`Snapshot ${volume.name || volume.id}`, form([
        { name: "name", label: "Name", required: true, value: `${volume.name || "volume"}-snap` },
        { name: "force", label: "Even while attached", type: "checkbox", value: (volume.attachments || []).length > 0 },
      ], async (v) => {
        await ctx.api("POST", url("/snapshots"), { snapshot: { volume_id: volume.id, name: v.name, force: v.force } });
        d.close();
        await refresh();
      }, { submit: "Snapshot" }));
    }

    function backupDialog(volume) {
      const d = dialog(`Back up ${volume.name || volume.id}`, form([
        { name: "name", label: "Name", required: true, value: `${volume.name || "volume"}-backup` },
        { name: "force", label: "Even while attached", type: "checkbox", value: (volume.attachments || []).length > 0 },
      ], async (v) => {
        await ctx.api("POST", url("/backups"), { backup: { volume_id: volume.id, name: v.name, force: v.force } });
        d.close();
        await refresh();
      }, { submit: "Back up" }));
    }

    async function restore(backup) {
      if (!(await confirm(`Restore backup ${backup.name || backup.id} into a new volume?`, { yes: "Restore" }))) return;
      try {
        await ctx.api("POST", url(`/backups/${backup.id}/restore`), { restore: { name: `${backup.name || "backup"}-restored` } });
        await refresh();
      } catch (err) { showError(err); }
    }

    const section = (title, area) => h("section", null, h("h2", null, title), area);
    root.append(ctx.ui.screenHead("Volumes",
      { label: "Refresh", onClick: () => refresh().catch(showError) },
      { label: "Create volume", primary: true, onClick: () => createDialog().catch(showError) }),
    section("Volumes", volumesArea), section("Snapshots", snapshotsArea), section("Backups", backupsArea));
    const offVolume = ctx.events.on({ service: "volume" }, refreshSoon);
    const offStream = ctx.events.on({ service: "cloudbox", type: "resync" }, refreshSoon);
    await refresh();
    return () => { closed = true; clearTimeout(timer); offVolume(); offStream(); };
  },
};
