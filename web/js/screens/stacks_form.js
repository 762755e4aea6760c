// The template part of the stacks screen's launch and update dialogs: a template pasted or chosen as a
// file, its parameters read with Heat's POST /validate and drawn as one field each (hidden ones as
// password fields, allowed_values as a select, custom constraints offering the project's names).
import { h } from "../ui.js";

// A custom constraint's kind → where the names it accepts are listed (suggestions: the field stays free text).
const SUGGEST = {
  "nova.flavor": ["compute", "/flavors", "flavors", (r) => r.name],
  "nova.keypair": ["compute", "/os-keypairs", "keypairs", (r) => r.keypair.name],
  "glance.image": ["image", "/v2/images", "images", (r) => r.name],
  "neutron.network": ["network", "/v2.0/networks", "networks", (r) => r.name || r.id],
  "cinder.volume": ["volumev3", "/volumes", "volumes", (r) => r.name || r.id],
};

/** A parameter's default (or value) as the text a field holds. */
function asText(value, type) {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value) && type === "CommaDelimitedList") return value.join(",");
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

let seq = 0;

/**
 * The template textarea, its file chooser and the parameter fields. ``current`` (an update): the stack's
 * parameters as shown, so fields start there and only changed values are sent.
 * Returns {node, body(): {template, parameters}, ready(): Promise (the last validate)}.
 */
export function templatePart(ctx, { template = "", current = null } = {}) {
  const id = `tpl${++seq}`;
  const text = h("textarea", { id, name: "template", rows: 10, class: "mono", spellcheck: "false",
    placeholder: "heat_template_version: 2018-08-31\nresources: …" });
  text.value = template;
  const file = h("input", { type: "file", name: "template_file", accept: ".yaml,.yml,.json,.template,text/*" });
  const error = h("p", { class: "error template-error", role: "alert" });
  const params = h("fieldset", { class: "stack-params" }, h("legend", null, "Parameters"),
    h("p", { class: "empty" }, "Paste or choose a template to see its parameters."));
  const lists = h("div", { hidden: true });  // the suggestions' datalists, kept across redraws of the fields
  let schema = {};
  let validated = "";
  let pending = Promise.resolve();

  const validate = () => {
    const body = text.value;
    if (body === validated) return pending;
    validated = body;
    pending = (async () => {
      error.textContent = "";
      if (!body.trim()) { schema = {}; params.replaceChildren(h("legend", null, "Parameters")); return; }
      try {
        const found = (await ctx.api("POST", ctx.url("orchestration", "/validate"), { template: body })).data;
        if (validated !== body) return;  // a newer text is being read
        schema = found.Parameters || {};
        draw(found);
      } catch (err) {
        if (validated !== body) return;
        error.textContent = err.message;
        validated = "";  // read it again when asked, the cloud's answer may change (an image made since)
        throw err;
      }
    })();
    pending.catch(() => {});
    return pending;
  };

  function field(name, spec) {
    const fid = `${id}-p-${name}`;
    const was = params.querySelector(`[data-param="${CSS.escape(name)}"]`)?.value;
    const start = current && name in current ? current[name] : spec.Default;
    const value = was !== undefined ? was : (spec.NoEcho === "true" ? "" : asText(start, spec.Type));
    const common = { id: fid, name, "data-param": name, required: current ? null : spec.Default === undefined };
    let input;
    if (spec.AllowedValues) {
      input = h("select", common, spec.AllowedValues.map((v) => h("option", { value: asText(v), selected: asText(v) === value }, asText(v))));
    } else if (spec.Type === "Boolean") {
      input = h("select", common, ["true", "false"].map((v) => h("option", { value: v, selected: v === value.toLowerCase() }, v)));
    } else if (spec.Type === "Json") {
      input = h("textarea", { ...common, rows: 3, class: "mono" });
      input.value = value;
    } else {
      const hidden = spec.NoEcho === "true";
      input = h("input", { ...common, type: hidden ? "password" : spec.Type === "Number" ? "number" : "text", value,
        autocomplete: hidden ? "new-password" : "off", minlength: spec.MinLength, maxlength: spec.MaxLength,
        min: spec.MinValue, max: spec.MaxValue, step: spec.Type === "Number" ? "any" : null,
        placeholder: hidden && (current || spec.Default !== undefined) ? (current ? "unchanged" : "the template's default") : null });
      if (SUGGEST[spec.CustomConstraint]) input.setAttribute("list", suggestions(spec.CustomConstraint));
    }
    const help = [spec.Description, spec.ConstraintDescription].filter(Boolean).join(" — ");
    return h("div", { class: "field" }, h("label", { for: fid }, spec.Label || name), input,
      help ? h("small", null, help) : null);
  }

  function suggestions(kind) {
    const listId = `${id}-${kind.replace(/\W/g, "-")}`;
    if (!document.getElementById(listId)) {
      const list = h("datalist", { id: listId });
      lists.append(list);
      const [service, path, key, label] = SUGGEST[kind];
      if (ctx.hasService(service)) {
        ctx.api("GET", ctx.url(service, path)).then((r) => list.replaceChildren(
          ...(r.data[key] || []).map((row) => h("option", { value: label(row) })))).catch(() => {});
      }
    }
    return listId;
  }

  function draw(found) {
    const names = Object.keys(schema);
    const grouped = (found.ParameterGroups || []).map((g) => ({ label: g.label, names: (g.parameters || []).filter((n) => n in schema) }));
    const inGroup = new Set(grouped.flatMap((g) => g.names));
    const rest = names.filter((n) => !inGroup.has(n));
    const fields = [...grouped.map((g) => g.names.length ? h("fieldset", null, h("legend", null, g.label || "Parameters"),
      g.names.map((n) => field(n, schema[n]))) : null), rest.map((n) => field(n, schema[n]))];
    params.replaceChildren(h("legend", null, "Parameters"),
      ...(names.length ? fields.flat().filter(Boolean) : [h("p", { class: "empty" }, "This template has no parameters.")]));
    if (found.Description) params.append(h("p", { class: "template-description" }, found.Description));
  }

  text.addEventListener("change", () => { validate(); });
  file.addEventListener("change", async () => {
    const chosen = file.files[0];
    if (!chosen) return;
    text.value = await chosen.text();
    validate();
  });

  const node = h("div", { class: "template-part" },
    h("div", { class: "field" }, h("label", { for: id }, "Template (YAML or JSON)"), text),
    h("div", { class: "field" }, h("label", null, "…or a template file ", file)),
    h("div", { class: "buttons" }, h("button", { type: "button", "data-action": "read-parameters",
      onclick: () => { validated = ""; validate(); } }, "Read parameters")),
    error, params, lists);
  if (template) validate();

  return {
    node,
    ready: () => validate(),
    /** {template, parameters}: the values that differ from the default (create) or the stack's value (update). */
    body() {
      const parameters = {};
      for (const input of params.querySelectorAll("[data-param]")) {
        const name = input.dataset.param;
        const spec = schema[name] || {};
        const base = current && name in current ? current[name] : spec.Default;
        if (input.value === "" && (spec.NoEcho === "true" || base === undefined)) continue;  // kept, or Heat says it is missing
        if (input.value === asText(base, spec.Type) && (current || spec.Default !== undefined)) continue;
        parameters[name] = input.value;
      }
      return { template: text.value, parameters };
    },
  };
}
