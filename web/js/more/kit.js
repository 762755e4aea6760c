// What the network, container and admin screens (web-more) share beyond the shell's ui.js:
// SVG elements, buttons that run one API action at a time, live refresh, and regions that reload.
import { h, showError, screenHead } from "../ui.js";

const SVG_NS = "http://www.w3.org/2000/svg";

// These screens' own styles, linked once when the first of them loads (the page's CSP allows only files).
if (!document.querySelector("link[data-more-css]")) {
  document.head.append(h("link", { rel: "stylesheet", href: new URL("./more.css", import.meta.url).pathname, "data-more-css": "" }));
}

/** An SVG element: s("rect", {x, y, class, "data-x-id": id}, children...). */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

/** A short form of an id, the full id in its tooltip. */
export const shortId = (id) => (id ? h("code", { title: id }, id.slice(0, 8)) : "—");

/** A button that runs ``action`` once at a time (disabled while it runs) and shows the API's message if it fails. */
export function button(label, action, attrs = {}) {
  const node = h("button", { type: "button", ...attrs }, label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    try { await action(); } catch (err) { showError(err); } finally { node.disabled = false; }
  });
  return node;
}

/** A titled part of a screen. */
export const section = (title, ...children) => h("section", { class: "card" }, h("h2", null, title), ...children);

/** Re-run ``reload`` (debounced) whenever an event matching one of ``filters`` arrives; returns the unsubscribe. */
export function live(ctx, filters, reload, wait = 250) {
  let timer = null;
  const fire = () => { clearTimeout(timer); timer = setTimeout(reload, wait); };
  const offs = filters.map((f) => ctx.events.on(f, fire));
  return () => { clearTimeout(timer); offs.forEach((off) => off()); };
}

/** A GET of a service's path: its body. */
export async function get(ctx, service, path, headers) {
  return (await ctx.api("GET", ctx.url(service, path), undefined, headers)).data;
}

// A redraw (a live event) must not take a choice or a half-typed value from under the user: the
// controls' values and focus are carried over to their counterparts, found by row id and name.
const controlKey = (el) => `${el.closest("[data-id]")?.dataset.id || ""}|${el.name || el.getAttribute("aria-label") || ""}`;

function controls(root) {
  const out = new Map();
  for (const el of root.querySelectorAll("select, input:not([type=file]), textarea")) {
    out.set(controlKey(el), { value: el.type === "checkbox" ? el.checked : el.value, focused: el === document.activeElement,
                              changed: el.type === "checkbox" ? el.checked !== el.defaultChecked
                                : el.tagName === "SELECT" ? !el.options[el.selectedIndex]?.defaultSelected : el.value !== el.defaultValue });
  }
  return out;
}

function restore(root, kept) {
  for (const el of root.querySelectorAll("select, input:not([type=file]), textarea")) {
    const was = kept.get(controlKey(el));
    if (!was) continue;
    if (was.changed) {
      if (el.type === "checkbox") el.checked = was.value;
      else if (el.tagName !== "SELECT" || [...el.options].some((o) => o.value === was.value)) el.value = was.value;
    }
    if (was.focused) el.focus();
  }
}

/** An element whose content ``load`` (async, returns nodes) replaces on each refresh; a failed refresh
 * keeps the last good content and shows the error. Returns {node, refresh}. */
export function region(load, attrs = {}) {
  const node = h("div", { class: "region", "aria-busy": "true", ...attrs }, h("p", null, "Loading…"));
  let running = null;
  let again = false;
  const refresh = async () => {
    if (running) { again = true; return running; }  // one more pass after this one: it may have read too early
    running = (async () => {
      do {
        again = false;
        node.setAttribute("aria-busy", "true");
        try {
          const fresh = [await load()].flat().filter((n) => n !== null && n !== undefined);
          const kept = controls(node);
          node.replaceChildren(...fresh);
          restore(node, kept);
        } catch (err) { showError(err); }
      } while (again);
      node.setAttribute("aria-busy", "false");
      running = null;
    })();
    return running;
  };
  return { node, refresh };
}

/** Tabs inside one screen: [{id, title, render(pane) → cleanup?}]; ``first`` (an id) or the first opens.
 * Returns {node, close}. */
export function tabs(list, first) {
  let cleanup = null;
  const pane = h("div", { class: "tab-pane", role: "tabpanel" });
  const bar = h("div", { class: "tabs buttons", role: "tablist" });
  const open = async (tab) => {
    if (typeof cleanup === "function") cleanup();
    cleanup = null;
    for (const b of bar.children) b.setAttribute("aria-selected", String(b.dataset.tab === tab.id));
    pane.replaceChildren();
    pane.dataset.tab = tab.id;
    try { cleanup = await tab.render(pane); } catch (err) { showError(err); }
  };
  for (const tab of list) {
    bar.append(h("button", { type: "button", role: "tab", "data-tab": tab.id, onclick: () => open(tab) }, tab.title));
  }
  open(list.find((tab) => tab.id === first) || list[0]);
  return { node: h("div", null, bar, pane), close: () => typeof cleanup === "function" && cleanup() };
}

/** Select options [{value, label}] from rows, with a first empty choice labelled ``none`` when given. */
export const choices = (rows, label, none) =>
  [...(none !== undefined ? [{ value: "", label: none }] : []), ...rows.map((r) => ({ value: r.id, label: label(r) }))];

/** A <select> of ``opts`` with ``value`` chosen. */
export const select = (opts, value, attrs = {}) =>
  h("select", attrs, opts.map((o) => h("option", { value: o.value, selected: o.value === value }, o.label)));

/** A screen made of tabs: ``meta`` is {id, title, group, order}; ``tabList(ctx)`` gives the tabs; the address's
 * ?tab= opens one of them. */
export const tabbedScreen = (meta, tabList) => ({
  ...meta,
  async render(root, ctx) {
    const view = tabs(tabList(ctx), ctx.params?.tab);
    root.append(screenHead(meta.heading || meta.title), view.node);
    return view.close;
  },
});
