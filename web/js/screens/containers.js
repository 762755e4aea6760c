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
    const uploads = h("div", { id: "uploads", "aria-live": "polite" });
    const panel = h("div", { id: "container-objects" });
    let view = null;  // the open container: {name, access, listing} (its parts redraw; its upload form stays)

    const containers = region(async () => {
      const list = (await ctx.api("GET", account("?format=json"))).data || [];
      return table([
        { label: "Name", value: (c) => h("a", { href: `#/containers?container=${encodeURIComponent(c.name)}`, "data-container": c.name,
            onclick: (ev) => { ev.preventDefault(); open(c.name); } }, c.name) },
        { label: "Objects", value: (c) => String(c.count) },
        { label: "Size", value: (c) => bytes(c.bytes) },
        { label: "", value: (c) => button("Delete", async () => {
            if (!(await confirm(`Delete container ${c.name}? It must be empty.`))) return;
            await ctx.api("DELETE", account(containerPath(c.name)));
            if (view && view.name === c.name) open(null);
            await containers.refresh();
          }, { class: "danger", "aria-label": `Delete container ${c.name}` }) },
      ], list, { empty: "No containers.", key: (c) => c.name });
    });

    /** Who may read the container, and the button that opens it to anyone or closes it again. */
    const accessPart = (name) => region(async () => {
      const head = await ctx.api("HEAD", account(containerPath(name)));
      const isPublic = (head.headers.get("X-Container-Read") || "").includes(".r:*");
      return h("p", null, h("span", { class: `badge ${isPublic ? "good" : "off"}`, "data-public": String(isPublic) },
        isPublic ? "public" : "private"), " ",
        isPublic ? h("span", null, "Anyone can read it at ", h("a", { href: account(containerPath(name)), target: "_blank" },
          location.origin + account(containerPath(name)))) : "Only this project can read it.",
        " ", button(isPublic ? "Make private" : "Make public", async () => {
          await ctx.api("POST", account(containerPath(name)), undefined,
            isPublic ? { "X-Remove-Container-Read": "x" } : { "X-Container-Read": PUBLIC_READ });
          await view.access.refresh();
        }, { "data-action": "toggle-public" }));
    });

    const listingPart = (name) => region(async () => table([
      { label: "Object", value: (o) => o.name ?? o.subdir },
      { label: "Size", value: (o) => (o.subdir ? "" : bytes(o.bytes)) },
      { label: "Type", value: (o) => o.content_type || "" },
      { label: "Modified", value: (o) => when(o.last_modified) },
      { label: "", value: (o) => o.subdir ? null : h("div", { class: "buttons" },
          button("Download", () => download(ctx, account(objectPath(name, o.name)), o.name)),
          button("Delete", async () => {
            if (!(await confirm(`Delete ${o.name}?`))) return;
            await ctx.api("DELETE", account(objectPath(name, o.name)));
            await refresh();
          }, { class: "danger", "aria-label": `Delete object ${o.name}` })) },
    ], (await ctx.api("GET", account(`${containerPath(name)}?format=json`))).data || [],
    { empty: "This container is empty.", key: (o) => o.name ?? o.subdir }));

    const uploadForm = (name) => form([{ name: "file", label: "File", type: "file", required: true }], async (v, el) => {
      const bar = progress(`Uploading ${v.file.name} to ${name}`);
      uploads.prepend(bar.el);
      while (uploads.children.length > 5) uploads.lastChild.remove();
      try {
        await ctx.upload("PUT", account(objectPath(name, v.file.name)), v.file,
          { "Content-Type": v.file.type || "application/octet-stream" }, (done, total) => bar.set(done, total));
        bar.finish(`${v.file.name} uploaded`);
      } catch (err) { bar.fail(err); throw err; }
      el.reset();
      await refresh();
    }, { submit: "Upload" });

    const open = (name) => {
      if (!name) { view = null; panel.replaceChildren(); return Promise.resolve(); }
      view = { name, access: accessPart(name), listing: listingPart(name) };
      const up = uploadForm(name);
      up.dataset.container = name;
      panel.replaceChildren(section(`Container ${name}`, view.access.node, up, uploads, view.listing.node));
      return Promise.all([view.access.refresh(), view.listing.refresh()]);
    };
    const refresh = () => Promise.all([containers.refresh(), view && view.listing.refresh(), view && view.access.refresh()]);

    const createForm = form([{ name: "name", label: "Container name", required: true }], async (v, el) => {
      const name = v.name.trim();
      if (!name || name.includes("/")) throw new Error("A container's name cannot be empty or hold '/'.");
      await ctx.api("PUT", account(containerPath(name)));
      el.reset();
      await containers.refresh();
    }, { submit: "Create container" });
    createForm.id = "container-create";

    root.append(screenHead("Containers"), section("Create a container", createForm),
      section("Containers", containers.node), panel);
    await Promise.all([containers.refresh(), open(ctx.params?.container || null)]);
    return live(ctx, [{ service: "object" }], refresh);
  },
};
