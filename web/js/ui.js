// Small DOM helpers every screen shares (ctx.ui). Real elements only: buttons are <button>,
// dialogs are <dialog> (Escape closes them), bars are <meter> and <progress>.

/** Make an element: `attrs` keys starting with "on" are listeners, `class`/`for` are mapped,
 * booleans set or drop the attribute, anything else becomes an attribute. Children may be
 * strings, nodes, arrays or null. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") el.className = value;
    else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** A table. `columns`: [{label, value(row) → string|Node}]; `rows`: objects; `key(row)` names a
 * row (its `data-id`, so live updates can find it). On a phone each cell shows its label. */
export function table(columns, rows, { empty = "Nothing here yet.", key, caption } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  const body = h("tbody", null, rows.map((row) => tableRow(columns, row, key)));
  return h("div", { class: "table-wrap" },
    h("table", null,
      caption ? h("caption", null, caption) : null,
      h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      body));
}

/** One row of `table` (to replace a row in place when its thing changed). */
export function tableRow(columns, row, key) {
  return h("tr", { "data-id": key ? key(row) : null },
    columns.map((c) => h("td", { "data-label": c.label }, c.value(row) ?? "")));
}

let fieldCount = 0;

/** A form. `fields`: [{name, label, type?, options?: [{value, label}], value?, required?, help?,
 * placeholder?, min?, max?, multiple?, accept?}]; types: text, password, number, select,
 * textarea, checkbox, file. `onSubmit(values, formEl)` may be async; its error is shown in the
 * form with the API's message. `values` holds strings, booleans, arrays (multiple) or File. */
export function form(fields, onSubmit, { submit = "Save", cancel } = {}) {
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, submit);
  const el = h("form", { class: "form", novalidate: false },
    fields.map(field),
    error,
    h("div", { class: "actions" }, button,
      cancel ? h("button", { type: "button", onclick: cancel }, "Cancel") : null));
  el.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      await onSubmit(formValues(el, fields), el);
    } catch (err) {
      error.textContent = messageOf(err);
    } finally {
      button.disabled = false;
    }
  });
  el.showError = (err) => { error.textContent = err ? messageOf(err) : ""; };
  return el;
}

function field(spec) {
  const id = `f${++fieldCount}-${spec.name}`;
  const common = { id, name: spec.name, required: spec.required, placeholder: spec.placeholder };
  let input;
  const type = spec.type || "text";
  if (type === "select") {
    input = h("select", { ...common, multiple: spec.multiple },
      (spec.options || []).map((o) => h("option", {
        value: o.value, selected: spec.multiple ? (spec.value || []).includes(o.value) : o.value === spec.value,
      }, o.label ?? o.value)));
  } else if (type === "textarea") {
    input = h("textarea", { ...common, rows: spec.rows || 4 });
    input.value = spec.value || "";
  } else if (type === "checkbox") {
    input = h("input", { ...common, type: "checkbox", checked: Boolean(spec.value) });
  } else {
    input = h("input", { ...common, type, value: spec.value, min: spec.min, max: spec.max, accept: spec.accept,
      autocomplete: spec.autocomplete, step: spec.step });
  }
  const help = spec.help ? h("small", { id: `${id}-help` }, spec.help) : null;
  if (help) input.setAttribute("aria-describedby", help.id);
  if (type === "checkbox") return h("label", { class: "check", for: id }, input, " ", spec.label, help);
  return h("div", { class: "field" }, h("label", { for: id }, spec.label), input, help);
}

function formValues(el, fields) {
  const values = {};
  for (const spec of fields) {
    const input = el.elements[spec.name];
    if (!input) continue;
    if (spec.type === "checkbox") values[spec.name] = input.checked;
    else if (spec.type === "file") values[spec.name] = input.files[0] || null;
    else if (spec.type === "select" && spec.multiple) values[spec.name] = [...input.selectedOptions].map((o) => o.value);
    else values[spec.name] = input.value;
  }
  return values;
}

/** A modal dialog. `actions`: [{label, onClick?(close) → may be async, primary?}]; an action
 * without onClick closes. Escape and the Close button close it; focus returns where it was. */
export function dialog(title, body, actions = []) {
  const before = document.activeElement;
  const titleId = `d${++fieldCount}`;
  const el = h("dialog", { "aria-labelledby": titleId });
  const close = () => { el.close(); };
  el.addEventListener("close", () => { el.remove(); if (before && before.focus) before.focus(); });
  const error = h("p", { class: "error", role: "alert" });
  el.append(
    h("div", { class: "dialog-head" }, h("h2", { id: titleId }, title),
      h("button", { type: "button", class: "icon", "aria-label": "Close", onclick: close }, "×")),
    h("div", { class: "dialog-body" }, body),
    error,
    actions.length ? h("div", { class: "actions" }, actions.map((a) => h("button", {
      type: "button", class: a.primary ? "primary" : (a.danger ? "danger" : null),
      "data-action": a.label.toLowerCase().replace(/\W+/g, "-").replace(/^-|-$/g, ""),
      onclick: async (ev) => {
        if (!a.onClick) { close(); return; }
        const button = ev.currentTarget;
        button.disabled = true;
        error.textContent = "";
        try { await a.onClick(close); } catch (err) { error.textContent = messageOf(err); } finally {
          button.disabled = false;
        }
      },
    }, a.label))) : null);
  document.body.append(el);
  el.showModal();
  const first = el.querySelector(".dialog-body input, .dialog-body select, .dialog-body textarea, .dialog-body button");
  if (first) first.focus();
  return { el, close, showError: (err) => { error.textContent = messageOf(err); } };
}

/** Ask yes or no; resolves true when confirmed. */
export function confirm(text, { yes = "Yes", no = "Cancel" } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    const d = dialog("Please confirm", h("p", null, text), [
      { label: yes, danger: true, onClick: (close) => { answer = true; close(); } },
      { label: no },
    ]);
    d.el.addEventListener("close", () => resolve(answer));
  });
}

/** A labelled progress bar: `set(done, total)`, `finish(text)`, `fail(err)`. */
export function progress(label) {
  const bar = h("progress", { max: 100, value: 0 });
  const text = h("span", { class: "progress-text", "aria-live": "polite" }, "0%");
  const el = h("div", { class: "progress", "data-updates": "0" }, h("span", null, label), bar, text);
  let updates = 0;
  return {
    el,
    set(done, total) {
      const percent = total ? Math.min(100, Math.floor((done / total) * 100)) : 0;
      bar.value = percent;
      el.dataset.updates = String(++updates);
      text.textContent = `${percent}% (${bytes(done)} of ${bytes(total)})`;
    },
    finish(message) { bar.value = 100; el.classList.add("done"); text.textContent = message || "100%"; },
    fail(err) { el.classList.add("failed"); text.textContent = messageOf(err); },
  };
}

/** Human sizes for bytes. */
export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

let toasts;

/** Show an error (an ApiError's message is the API's own). */
export function showError(err) {
  notify(messageOf(err), "error");
  if (!(err && err.status)) console.error(err);
}

/** A short notice at the bottom of the page; errors stay until dismissed. */
export function notify(text, kind = "info") {
  if (!toasts || !toasts.isConnected) {
    toasts = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(toasts);
  }
  const item = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null },
    h("span", null, text),
    h("button", { type: "button", class: "icon", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"));
  toasts.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 5000);
  return item;
}

export function messageOf(err) {
  if (!err) return "";
  return err.message || String(err);
}

/** A status as a coloured badge (the text is what the API said). */
export function statusBadge(text) {
  const value = String(text ?? "");
  const tone = /ERROR|FAIL|DOWN|error|fail/.test(value) ? "bad"
    : /^(ACTIVE|available|active|in-use|UP|ok|enabled)$|_COMPLETE$/.test(value) ? "good"
      : /SHUTOFF|PAUSED|SUSPENDED|SHELVED|deactivated|DISABLED/.test(value) ? "off" : "busy";
  return h("span", { class: `badge ${tone}`, "data-status": value }, value);
}

/** Usage against a limit as a meter; a limit of -1 (or none) is unlimited. */
export function bar(used, limit, label) {
  const unlimited = limit === null || limit === undefined || limit < 0;
  const text = unlimited ? `${used} used (no limit)` : `${used} of ${limit}`;
  const meter = h("meter", { min: 0, max: unlimited ? Math.max(used, 1) : Math.max(limit, 1), value: used,
    low: unlimited ? null : limit * 0.7, high: unlimited ? null : limit * 0.9, optimum: 0, "aria-label": label });
  return h("div", { class: "bar", "data-used": used, "data-limit": unlimited ? -1 : limit },
    h("div", { class: "bar-head" }, h("span", null, label), h("span", null, text)), meter);
}

/** A row of buttons for actions: [{label, onClick, danger?, disabled?}]. */
export function buttons(actions) {
  return h("div", { class: "buttons" }, actions.filter(Boolean).map((a) => h("button", {
    type: "button", class: a.danger ? "danger" : (a.primary ? "primary" : null), disabled: a.disabled,
    title: a.title, onclick: a.onClick,
  }, a.label)));
}

/** Format an ISO time briefly in the browser's locale. */
export function when(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleString();
}

/** A header for a screen: title and its buttons. */
export function screenHead(title, ...actions) {
  return h("div", { class: "screen-head" }, h("h1", { tabindex: "-1" }, title), buttons(actions));
}
