// Stacks (Heat v1 at the catalog's "orchestration"): the project's stacks with live status, a launch
// dialog (template pasted or chosen, a field per parameter read with POST /validate, a dry run), a
// stack's outputs, resources and events, the preview (and then the run) of an update, and delete.
// A stack's own status changes reach the event stream; its resources' do not (they have no project
// of their own), so an open stack is re-read while it is *_IN_PROGRESS.
import { h, table, dialog, confirm, showError, screenHead, when, notify } from "../ui.js";
import { button, region, section, shortId } from "../more/kit.js";
import { templatePart } from "./stacks_form.js";

const POLL_MS = 2000;
const EVENTS_SHOWN = 50;

/** A stack or resource status as a badge: COMPLETE good, FAILED bad, IN_PROGRESS busy, deleted/suspended off. */
export function stackBadge(status) {
  const value = String(status || "");
  const tone = /FAILED$/.test(value) ? "bad" : /IN_PROGRESS$/.test(value) ? "busy"
    : /^(DELETE|SUSPEND)_COMPLETE$/.test(value) ? "off" : /COMPLETE$/.test(value) ? "good" : "busy";
  return h("span", { class: `badge ${tone}`, "data-status": value }, value);
}

const busy = (stack) => /_IN_PROGRESS$/.test(stack?.stack_status || "");

/** An output's value: text as is, anything else as JSON. */
const shown = (value) => (value !== null && typeof value === "object"
  ? h("pre", { class: "mono" }, JSON.stringify(value, null, 2)) : h("code", null, value === null || value === undefined ? "—" : String(value)));

/** The plan of an update (Heat's resource_changes) as a list per kind of change. */
function planView(plan) {
  const changes = plan.resource_changes || {};
  const kinds = [["added", "Added"], ["updated", "Updated in place"], ["replaced", "Replaced"], ["deleted", "Deleted"], ["unchanged", "Unchanged"]];
  return h("div", { class: "stack-plan" }, kinds.map(([key, label]) => h("div", { "data-change": key },
    h("h3", null, `${label} (${(changes[key] || []).length})`),
    h("ul", { class: "plain" }, (changes[key] || []).map((r) => h("li", { "data-resource": r.resource_name },
      h("strong", null, r.resource_name), ` ${r.resource_type}`, r.reason ? ` — ${r.reason}` : "",
      (r.changes || []).length ? h("small", null, ` (${r.changes.map((c) => c.property).join(", ")})`) : null))))));
}

export default {
  id: "stacks", title: "Stacks", group: "project", order: 80,
  async render(root, ctx) {
    const H = (path) => ctx.url("orchestration", path);
    if (!ctx.hasService("orchestration")) {
      root.append(screenHead("Stacks"), h("p", { class: "empty" }, "This cloud's catalog has no orchestration service."));
      return undefined;
    }
    let stacks = [];
    let open = null;          // the stack shown below the list: {id, name, path, stack}
    let timer = null;
    let closed = false;
    const path = (s) => `/stacks/${encodeURIComponent(s.stack_name)}/${s.id}`;

    const list = region(async () => {
      stacks = (await ctx.api("GET", H("/stacks"))).data.stacks;
      schedule();
      return table([
        { label: "Name", value: (s) => h("button", { type: "button", class: "link", "data-action": "show", onclick: () => show(s) }, s.stack_name) },
        { label: "ID", value: (s) => shortId(s.id) },
        { label: "Status", value: (s) => stackBadge(s.stack_status) },
        { label: "Reason", value: (s) => h("small", null, s.stack_status_reason || "") },
        { label: "Created", value: (s) => when(s.creation_time) },
        { label: "", value: (s) => h("div", { class: "buttons" },
            button("Delete", () => remove(s), { class: "danger", "data-action": "delete", "aria-label": `Delete stack ${s.stack_name}` })) },
      ], stacks, { empty: "No stacks yet: launch one from a template.", key: (s) => s.id });
    }, { id: "stack-list" });

    const detail = region(async () => {
      if (!open) return [];
      const base = H(open.path);
      const [stack, resources, events] = await Promise.all([
        ctx.api("GET", base).then((r) => r.data.stack),
        ctx.api("GET", `${base}/resources`).then((r) => r.data.resources),
        ctx.api("GET", `${base}/events?sort_dir=desc&limit=${EVENTS_SHOWN}`).then((r) => r.data.events),
      ]).catch((err) => { if (err.status === 404) { hide(); return []; } throw err; });
      if (!open || !stack) return [];
      open.stack = stack;
      schedule();
      return h("section", { class: "card", id: "stack-detail", "data-stack-id": stack.id },
        h("div", { class: "screen-head" }, h("h2", null, `Stack ${stack.stack_name}`), h("div", { class: "buttons" },
          button("Preview update…", () => updateDialog(open)),
          button("Delete", () => remove(stack), { class: "danger", "data-action": "delete" }),
          button("Close", async () => hide()))),
        h("dl", { class: "facts" },
          h("dt", null, "Status"), h("dd", { class: "stack-status" }, stackBadge(stack.stack_status)),
          h("dt", null, "Reason"), h("dd", null, stack.stack_status_reason || ""),
          h("dt", null, "Description"), h("dd", null, stack.description || ""),
          h("dt", null, "Created"), h("dd", null, when(stack.creation_time)),
          h("dt", null, "Updated"), h("dd", null, when(stack.updated_time)),
          h("dt", null, "Parameters"), h("dd", null, h("ul", { class: "plain" }, Object.entries(stack.parameters || {})
            .filter(([k]) => !k.startsWith("OS::")).map(([k, v]) => h("li", null, h("code", null, k), ` = ${v}`))))),
        h("h3", null, "Outputs"),
        h("div", { id: "stack-outputs" }, table([
          { label: "Output", value: (o) => h("strong", null, o.output_key) },
          { label: "Value", value: (o) => (o.output_error ? h("span", { class: "error" }, o.output_error) : shown(o.output_value)) },
          { label: "Description", value: (o) => o.description || "" },
        ], stack.outputs || [], { empty: busy(stack) ? "Outputs show once the stack is made." : "No outputs.", key: (o) => o.output_key })),
        h("h3", null, "Resources"),
        h("div", { id: "stack-resources" }, table([
          { label: "Name", value: (r) => h("strong", null, r.resource_name) },
          { label: "Type", value: (r) => r.resource_type },
          { label: "Status", value: (r) => stackBadge(r.resource_status) },
          { label: "Physical ID", value: (r) => shortId(r.physical_resource_id) },
          { label: "Reason", value: (r) => h("small", null, r.resource_status_reason || "") },
        ], resources, { empty: "No resources.", key: (r) => r.resource_name })),
        h("h3", null, `Events (newest ${EVENTS_SHOWN})`),
        h("div", { id: "stack-events" }, table([
          { label: "Time", value: (e) => when(e.event_time) },
          { label: "Resource", value: (e) => e.resource_name },
          { label: "Status", value: (e) => stackBadge(e.resource_status) },
          { label: "Reason", value: (e) => h("small", null, e.resource_status_reason || "") },
        ], events, { empty: "No events.", key: (e) => e.id })));
    }, { id: "stack-detail-area" });
    detail.node.replaceChildren();  // nothing open yet
    detail.node.setAttribute("aria-busy", "false");

    function show(stack) {
      open = { id: stack.id, name: stack.stack_name, path: path(stack), stack: null };
      history.replaceState(null, "", `#/stacks?id=${encodeURIComponent(stack.id)}`);
      return detail.refresh();
    }

    function hide() {
      open = null;
      history.replaceState(null, "", "#/stacks");
      detail.node.replaceChildren();
    }

    /** Re-read while something moves that the stream does not tell of: the open stack's resources and
     * events while it is in progress, and the list too when the stream is down. */
    function schedule() {
      clearTimeout(timer);
      if (closed) return;
      const openBusy = open && busy(open.stack);
      const listBusy = !ctx.events.live && stacks.some(busy);
      if (!openBusy && !listBusy) return;
      timer = setTimeout(() => {
        if (listBusy) list.refresh();
        if (openBusy) detail.refresh();
      }, POLL_MS);
    }

    async function remove(stack) {
      if (!(await confirm(`Delete stack ${stack.stack_name} and everything it made?`, { yes: "Delete" }))) return;
      await ctx.api("DELETE", H(path(stack)));
      await Promise.all([list.refresh(), open && open.id === stack.id ? detail.refresh() : null]);
    }

    function launchDialog() {
      const tpl = templatePart(ctx);
      const name = h("input", { name: "stack_name", id: "stack-name", required: true, autocomplete: "off",
        pattern: "[a-zA-Z][a-zA-Z0-9_.\\-]*" });
      const rollback = h("input", { type: "checkbox", name: "rollback", id: "stack-rollback" });
      const timeout = h("input", { type: "number", name: "timeout", id: "stack-timeout", min: 1, placeholder: "no limit" });
      const result = h("div", { class: "stack-preview" });
      const body = () => {
        if (!name.value.trim()) throw new Error("A stack needs a name.");
        const out = { stack_name: name.value.trim(), ...tpl.body(), disable_rollback: !rollback.checked };
        if (timeout.value) out.timeout_mins = Number(timeout.value);
        return out;
      };
      const d = dialog("Launch a stack", h("div", { id: "stack-launch" },
        h("div", { class: "field" }, h("label", { for: "stack-name" }, "Stack name"), name),
        tpl.node,
        h("label", { class: "check", for: "stack-rollback" }, rollback, " Roll back (delete what was made) if it fails"),
        h("div", { class: "field" }, h("label", { for: "stack-timeout" }, "Timeout (minutes)"), timeout),
        result), [
        { label: "Preview", onClick: async () => {
          await tpl.ready();
          const found = (await ctx.api("POST", H("/stacks/preview"), body())).data.stack;
          result.replaceChildren(h("h3", null, "It would make"), table([
            { label: "Resource", value: (r) => h("strong", null, r.resource_name) },
            { label: "Type", value: (r) => r.resource_type },
          ], found.resources || [], { empty: "Nothing.", key: (r) => r.resource_name }));
        } },
        { label: "Launch", primary: true, onClick: async (close) => {
          await tpl.ready();
          const made = (await ctx.api("POST", H("/stacks"), body())).data.stack;
          close();
          notify(`Stack ${name.value.trim()} is being made.`);
          await list.refresh();
          const row = stacks.find((s) => s.id === made.id);
          if (row) await show(row);
        } },
        { label: "Cancel" },
      ]);
      return d;
    }

    async function updateDialog(target) {
      const base = H(target.path);
      const [template, stack] = await Promise.all([
        ctx.api("GET", `${base}/template`).then((r) => r.data),
        ctx.api("GET", base).then((r) => r.data.stack)]);
      const tpl = templatePart(ctx, { template: JSON.stringify(template, null, 2), current: stack.parameters || {} });
      const result = h("div", { class: "stack-preview" });
      let previewed = null;  // the body whose plan is shown: Update sends exactly that
      dialog(`Update stack ${stack.stack_name}`, h("div", { id: "stack-update" },
        h("p", null, "Change the template or parameters, preview what the update would do, then run it. ",
          "Parameters left as they are keep the stack's values."), tpl.node, result), [
        { label: "Preview update", primary: true, onClick: async () => {
          await tpl.ready();
          const sent = tpl.body();
          const plan = (await ctx.api("PATCH", `${base}/preview`, sent)).data;
          previewed = sent;
          result.replaceChildren(h("h3", null, "The update would"), planView(plan));
        } },
        { label: "Update", danger: true, onClick: async (close) => {
          if (!previewed) throw new Error("Preview the update first: then Update runs what it showed.");
          await ctx.api("PATCH", base, previewed);
          close();
          await Promise.all([list.refresh(), detail.refresh()]);
        } },
        { label: "Cancel" },
      ]);
    }

    const offStack = ctx.events.on({ service: "orchestration", type: "stack" }, (event) => {
      list.refresh();
      if (open && event.id === open.id) detail.refresh();
    });
    const offResync = ctx.events.on({ service: "cloudbox", type: "resync" }, () => { list.refresh(); detail.refresh(); });
    const offStream = ctx.events.on({ service: "cloudbox", type: "stream" }, () => schedule());

    root.append(screenHead("Stacks",
      { label: "Refresh", onClick: () => { list.refresh(); detail.refresh(); } },
      { label: "Launch stack", primary: true, onClick: () => { try { launchDialog(); } catch (err) { showError(err); } } }),
    section("Stacks", list.node), detail.node);
    await list.refresh();
    const wanted = ctx.params?.id && stacks.find((s) => s.id === ctx.params.id);
    if (wanted) await show(wanted);
    return () => { closed = true; clearTimeout(timer); offStack(); offResync(); offStream(); };
  },
};
