// Object storage (Swift): containers (list, create, delete, public or private) and their objects
// (upload with progress, download, delete).
import { h, table, form, confirm, screenHead, progress, bytes, when } from "../ui.js";
import { button, section, live, region } from "../more/kit.js";

const PUBLIC_READ = ".r:*,.rlistings";
const containerPath = (container) => `/${encodeURIComponent(container)}`;
const objectPath = (container, name) => `${containerPath(container)}/${name.split("/").map(encodeURIComponent).join("/")}`;

/** A download that keeps the token in a header: the object comes as a blob the browser saves. */
async function download(ctx, url, name) {
  const resp = await fetch(url, { headers: { "X-Auth-Token": ctx.session.token } });
  if (!resp.ok) throw Object.assign(new Error(`The download failed: ${resp.status} ${resp.statusText}`), { status: resp.status });
  const link = h("a", { href: URL.createObjectURL(await resp.blob()), download: name.split("/").pop(), hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

export default {
  id: "containers", title: "Containers", group: "project", order: 70,
  async render(root, ctx) {
    const account = (path = "") => ctx.url("object-store", path);
    let opened = ctx.params?.container || null;  // the container whose objects are shown

    const containers = region(async () => {
      const list = (await ctx.api("GET", account("?format=json"))).data || [];
      return table([
        { label: "Name", value: (c) => h("a", { href: `#/containers?container=${encodeURIComponent(c.name)}`, "data-container": c.name,
            onclick: (ev) => { ev.preventDefault(); opened = c.name; objects.refresh(); } }, c.name) },
        { label: "Objects", value: (c) => String(c.count) },
        { label: "Size", value: (c) => bytes(c.bytes) },
        { label: "", value: (c) => button("Delete", async () => {
            if (!(await confirm(`Delete container ${c.name}? It must be empty.`))) return;
            await ctx.api("DELETE", account(containerPath(c.name)));
            if (opened === c.name) opened = null;
            await Promise.all([containers.refresh(), objects.refresh()]);
          }, { class: "danger", "aria-label": `Delete container ${c.name}` }) },
      ], list, { empty: "No containers.", key: (c) => c.name });
    });

    const uploadForm = (name) => form([{ name: "file", label: "File", type: "file", required: true }], async (v, el) => {
      const bar = progress(`Uploading ${v.file.name} to ${name}`);
      uploads.prepend(bar.el);  // outside the listing, which the upload's end redraws
      while (uploads.children.length > 5) uploads.lastChild.remove();
      try {
        await ctx.upload("PUT", account(objectPath(name, v.file.name)), v.file,
          { "Content-Type": v.file.type || "application/octet-stream" }, (done, total) => bar.set(done, total));
        bar.finish(`${v.file.name} uploaded`);
      } catch (err) { bar.fail(err); throw err; }
      el.reset();
      await Promise.all([objects.refresh(), containers.refresh()]);
    }, { submit: "Upload" });

    const uploads = h("div", { id: "uploads", "aria-live": "polite" });
    const objects = region(async () => {
      if (!opened) return null;
      const name = opened;
      const [head, listing] = await Promise.all([ctx.api("HEAD", account(containerPath(name))),
                                                 ctx.api("GET", account(`${containerPath(name)}?format=json`))]);
      const isPublic = (head.headers.get("X-Container-Read") || "").includes(".r:*");
      const up = uploadForm(name);
      up.dataset.container = name;
      return section(`Container ${name}`,
        h("p", null, h("span", { class: `badge ${isPublic ? "good" : "off"}`, "data-public": String(isPublic) },
          isPublic ? "public" : "private"), " ",
          isPublic ? h("span", null, "Anyone can read it at ", h("a", { href: account(containerPath(name)), target: "_blank" },
            location.origin + account(containerPath(name)))) : "Only this project can read it.",
          " ", button(isPublic ? "Make private" : "Make public", async () => {
            await ctx.api("POST", account(containerPath(name)), undefined,
              isPublic ? { "X-Remove-Container-Read": "x" } : { "X-Container-Read": PUBLIC_READ });
            await objects.refresh();
          }, { "data-action": "toggle-public" })),
        up,
        table([
          { label: "Object", value: (o) => o.name ?? o.subdir },
          { label: "Size", value: (o) => (o.subdir ? "" : bytes(o.bytes)) },
          { label: "Type", value: (o) => o.content_type || "" },
          { label: "Modified", value: (o) => when(o.last_modified) },
          { label: "", value: (o) => o.subdir ? null : h("div", { class: "buttons" },
              button("Download", () => download(ctx, account(objectPath(name, o.name)), o.name)),
              button("Delete", async () => {
                if (!(await confirm(`Delete ${o.name}?`))) return;
                await ctx.api("DELETE", account(objectPath(name, o.name)));
                await Promise.all([objects.refresh(), containers.refresh()]);
              }, { class: "danger", "aria-label": `Delete object ${o.name}` })) },
        ], listing.data || [], { empty: "This container is empty.", key: (o) => o.name ?? o.subdir }));
    }, { id: "container-objects" });

    const createForm = form([{ name: "name", label: "Container name", required: true }], async (v, el) => {
      const name = v.name.trim();
      if (!name || name.includes("/")) throw new Error("A container's name cannot be empty or hold '/'.");
      await ctx.api("PUT", account(containerPath(name)));
      el.reset();
      await containers.refresh();
    }, { submit: "Create container" });
    createForm.id = "container-create";

    root.append(screenHead("Containers"), section("Create a container", createForm),
      section("Containers", containers.node), uploads, objects.node);
    await Promise.all([containers.refresh(), objects.refresh()]);
    return live(ctx, [{ service: "object" }, { service: "object-store" }], () =>
      Promise.all([containers.refresh(), objects.refresh()]));
  },
};
