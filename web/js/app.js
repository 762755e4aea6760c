// The dashboard's shell: sign-in, the session and its expiry, the project switcher, navigation
// by hash, themes, and the live event stream. Screens live in ./screens/ (see screens/index.js).
import * as api from "./api.js";
import * as ui from "./ui.js";
import { loadScreens } from "./screens/index.js";

const { h } = ui;
const TOKEN_KEY = "cloudbox-token";
const THEME_KEY = "cloudbox-theme";
const LAST_KEY = "cloudbox-last-sign-in";
const root = document.getElementById("app");

let session = null;        // ctx.session, or null when signed out
let paths = {};            // service type → path, from the token's catalog
let screens = [];          // the loaded screens
let leaveScreen = null;    // what the current screen's render returned
let expiryTimer = null;
let stream = null;         // the event stream's connection (whatever events.js's connect returns)
const listeners = new Set();
let main = null;
let liveBadge = null;
let renderSeq = 0;

// --- themes -------------------------------------------------------------------------------------
function applyTheme(theme) {
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function currentTheme() {
  return document.documentElement.dataset.theme
    || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

function themeButton() {
  const label = () => (currentTheme() === "dark" ? "Light theme" : "Dark theme");
  const button = h("button", { type: "button", class: "theme-toggle", "aria-pressed": String(currentTheme() === "dark") }, label());
  button.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    button.textContent = label();
    button.setAttribute("aria-pressed", String(next === "dark"));
  });
  return button;
}

// --- the API as screens see it (ctx.api, ctx.url) ------------------------------------------------
function onUnauthorized() {
  if (session) expire("Your session expired — sign in again.");
}

function call(method, url, body, headers) {
  return api.request(method, url, body, headers, { token: session && session.token, onUnauthorized });
}

function upload(method, url, file, headers, onProgress) {
  return api.upload(method, url, file, headers, { token: session && session.token, onProgress, onUnauthorized });
}

function serviceUrl(type, path = "") {
  const base = paths[type];
  if (base === undefined) throw new api.ApiError(0, `The cloud's catalog has no ${type} service.`, null);
  return base + path;
}

// --- live events (ctx.events) --------------------------------------------------------------------
function matches(filter, event) {
  return Object.entries(filter || {}).every(([k, v]) => v === undefined || event[k] === v);
}

function dispatch(event) {
  if (event.service === "cloudbox" && event.type === "expired") {
    // The stream ended because the token did (expired or revoked): say so now, not at the next click.
    if (session) expire("Your session expired — sign in again.");
    return;
  }
  for (const entry of [...listeners]) {
    if (!matches(entry.filter, event)) continue;
    try { entry.fn(event); } catch (err) { console.error("event listener failed", err); }
  }
}

const events = {
  live: false,
  on(filter, fn) {
    const entry = { filter, fn };
    listeners.add(entry);
    return () => listeners.delete(entry);
  },
};

let everLive = false;

/** The stream's state from events.js: "connecting", "open", "retrying", "expired" or "closed".
 * Screens hear {service: "cloudbox", type: "stream", live} when it changes (and poll while it is
 * down), and {service: "cloudbox", type: "resync"} when they should re-read what they show. */
function setLive(state) {
  const live = state === "open";
  if (live === events.live) return;
  events.live = live;
  if (liveBadge) {
    liveBadge.textContent = live ? "Live" : "Offline";
    liveBadge.className = `live ${live ? "on" : "off"}`;
  }
  dispatch({ service: "cloudbox", type: "stream", live });
  // The first time the stream opens, what a screen read before it may already be stale; later
  // reconnects bring their own resync event from events.js.
  if (live && !everLive) dispatch({ service: "cloudbox", type: "resync" });
  if (live) everLive = true;
}

async function connectEvents(token) {
  try {
    const mod = await import("./events.js");
    if (!session || session.token !== token) return;
    stream = mod.connect(token, dispatch, setLive);
  } catch (err) {
    console.warn("live events unavailable:", err.message);
    setLive("closed");
  }
}

function disconnectEvents() {
  const s = stream;
  stream = null;
  if (typeof s === "function") s();
  else if (s && typeof s.close === "function") s.close();
  else if (s && typeof s.abort === "function") s.abort();
  setLive("closed");
  everLive = false;
}

// --- the session ---------------------------------------------------------------------------------
async function startSession({ token, body }, projects) {
  const roles = (body.roles || []).map((r) => r.name);
  session = {
    token,
    user: body.user,
    project: body.project || null,
    projects: projects || [],
    roles,
    isAdmin: roles.includes("admin"),
    expiresAt: new Date(body.expires_at),
  };
  paths = api.servicePaths(body.catalog);
  sessionStorage.setItem(TOKEN_KEY, token);
  localStorage.setItem(LAST_KEY, JSON.stringify({
    user: body.user.name, domain: (body.user.domain || {}).name || "Default", project: body.project ? body.project.name : "",
  }));
  clearTimeout(expiryTimer);
  // setTimeout's delay is a 32-bit count of milliseconds; re-check a far expiry later.
  const wait = Math.min(session.expiresAt.getTime() - Date.now(), 2 ** 31 - 1);
  expiryTimer = setTimeout(checkExpiry, Math.max(wait, 0));
  disconnectEvents();
  connectEvents(token);
  if (!screens.length) screens = await loadScreens();
  renderShell();
}

function checkExpiry() {
  if (!session) return;
  if (Date.now() >= session.expiresAt.getTime()) expire("Your session expired — sign in again.");
  else expiryTimer = setTimeout(checkExpiry, Math.min(session.expiresAt.getTime() - Date.now(), 2 ** 31 - 1));
}

function endSession() {
  clearTimeout(expiryTimer);
  disconnectEvents();
  if (leaveScreen) { try { leaveScreen(); } catch (err) { console.error(err); } }
  leaveScreen = null;
  listeners.clear();
  session = null;
  paths = {};
  sessionStorage.removeItem(TOKEN_KEY);
  for (const d of document.querySelectorAll("dialog")) d.remove();
}

function expire(message) {
  endSession();
  renderSignIn({ notice: message, expired: true });
}

async function signOut() {
  const token = session && session.token;
  endSession();
  renderSignIn({ notice: "You are signed out." });
  if (token) {
    try { await api.revokeToken(token); } catch (err) { ui.showError(err); }
  }
}

/** Sign in with a password; without a project, take the first project the user has. */
async function signIn(values) {
  const reply = await api.passwordToken(values.user, values.password, values.domain, values.project);
  const projects = await api.myProjects(reply.token);
  if (reply.body.project || !projects.length) {
    await startSession(reply, projects);
    return;
  }
  const scoped = await api.rescopeToken(reply.token, projects[0].id);
  await api.revokeToken(reply.token);
  await startSession(scoped, projects);
}

async function switchProject(projectId) {
  const old = session.token;
  const projects = session.projects;
  try {
    const reply = await api.rescopeToken(old, projectId);
    if (leaveScreen) { try { leaveScreen(); } catch (err) { console.error(err); } }
    leaveScreen = null;
    listeners.clear();
    await startSession(reply, projects);
    api.revokeToken(old).catch(() => {});
  } catch (err) {
    if (err.status === 401) onUnauthorized();
    else ui.showError(err);
  }
}

// --- sign-in screen ------------------------------------------------------------------------------
function renderSignIn({ notice = "", expired = false } = {}) {
  const last = JSON.parse(localStorage.getItem(LAST_KEY) || "{}");
  const signin = ui.form([
    { name: "user", label: "User", value: last.user || "", required: true, autocomplete: "username" },
    { name: "password", label: "Password", type: "password", required: true, autocomplete: "current-password" },
    { name: "domain", label: "Domain", value: last.domain || "Default", required: true },
    { name: "project", label: "Project (optional)", value: last.project || "", help: "Empty: your first project." },
  ], signIn, { submit: "Sign in" });
  signin.id = "signin";
  root.replaceChildren(
    h("header", { class: "top" }, h("a", { class: "brand", href: "#/" }, "cloudbox"), h("span", { class: "spacer" }), themeButton()),
    h("main", { id: "main", class: "signin-page" },
      h("section", { class: "card signin", "aria-labelledby": "signin-title" },
        expired ? h("div", { class: "expired", role: "alert", id: "session-expired" }, h("strong", null, notice)) : null,
        h("h1", { id: "signin-title" }, expired ? "Sign in again" : "Sign in"),
        !expired && notice ? h("p", { class: "notice", role: "status" }, notice) : null,
        signin)));
  const first = signin.querySelector(last.user ? "input[name=password]" : "input[name=user]");
  if (first) first.focus();
}

// --- the shell -----------------------------------------------------------------------------------
function visibleScreens() {
  return screens.filter((s) => s.group !== "admin" || session.isAdmin);
}

function navigation() {
  const groups = [["project", "Project"], ["admin", "Admin"]];
  const extra = [...new Set(visibleScreens().map((s) => s.group))].filter((g) => g !== "project" && g !== "admin");
  return h("nav", { id: "nav", "aria-label": "Screens" },
    [...groups, ...extra.map((g) => [g, g])].map(([group, title]) => {
      const items = visibleScreens().filter((s) => (s.group || "project") === group);
      if (!items.length) return null;
      return h("div", { class: "nav-group", "data-group": group },
        h("h2", null, title),
        h("ul", null, items.map((s) => h("li", null, h("a", { href: `#/${s.id}`, "data-screen": s.id }, s.title)))));
    }));
}

function projectSwitcher() {
  const current = session.project ? session.project.id : "";
  const select = h("select", { id: "project-switcher", "aria-label": "Project" },
    session.project ? null : h("option", { value: "" }, "(no project)"),
    session.projects.map((p) => h("option", { value: p.id, selected: p.id === current }, p.name)));
  select.addEventListener("change", () => { if (select.value && select.value !== current) switchProject(select.value); });
  return h("label", { class: "switcher" }, h("span", { class: "sr-only" }, "Project"), select);
}

function renderShell() {
  liveBadge = h("span", { class: `live ${events.live ? "on" : "off"}`, title: "Live updates" }, events.live ? "Live" : "Offline");
  const menu = h("button", { type: "button", class: "menu-toggle", "aria-expanded": "false", "aria-controls": "nav" }, "Menu");
  main = h("main", { id: "main", tabindex: "-1" });
  const nav = navigation();
  menu.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    menu.setAttribute("aria-expanded", String(open));
  });
  nav.addEventListener("click", (ev) => {
    if (ev.target.closest("a")) { nav.classList.remove("open"); menu.setAttribute("aria-expanded", "false"); }
  });
  root.replaceChildren(
    h("a", { class: "skip", href: "#main", onclick: (ev) => { ev.preventDefault(); main.focus(); } }, "Skip to content"),
    h("header", { class: "top" },
      menu,
      h("a", { class: "brand", href: "#/" }, "cloudbox"),
      projectSwitcher(),
      h("span", { class: "spacer" }),
      liveBadge,
      h("span", { class: "who", id: "who" }, session.user.name, session.isAdmin ? h("small", null, " (admin)") : null),
      themeButton(),
      h("button", { type: "button", id: "signout", onclick: signOut }, "Sign out")),
    h("div", { class: "layout" }, nav, main));
  route();
}

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [id, query = ""] = hash.split("?");
  return { id, params: Object.fromEntries(new URLSearchParams(query)) };
}

function navigate(screenId, params) {
  const query = params && Object.keys(params).length ? `?${new URLSearchParams(params)}` : "";
  const target = `#/${screenId}${query}`;
  if (location.hash === target) route();
  else location.hash = target;
}

async function route() {
  if (!session || !main) return;
  const seq = ++renderSeq;
  const { id, params } = parseHash();
  const available = visibleScreens();
  const screen = available.find((s) => s.id === id) || available[0];
  if (leaveScreen) { try { leaveScreen(); } catch (err) { console.error(err); } }
  leaveScreen = null;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.screen === (screen && screen.id)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const area = h("div", { class: "screen", "data-screen": screen ? screen.id : "" });
  main.replaceChildren(area);
  if (!screen) {
    area.append(h("p", null, "No screens are available."));
    return;
  }
  document.title = `${screen.title} · cloudbox`;
  try {
    const leave = await screen.render(area, { ...ctx, params });
    if (seq !== renderSeq || !session) { if (typeof leave === "function") leave(); return; }
    leaveScreen = typeof leave === "function" ? leave : null;
  } catch (err) {
    if (seq !== renderSeq || !session) return;
    area.append(h("p", { class: "error", role: "alert" }, ui.messageOf(err)));
  }
  const title = area.querySelector("h1");
  if (title && document.activeElement === document.body) title.focus({ preventScroll: true });
}

const ctx = {
  api: call,
  upload,
  url: serviceUrl,
  hasService: (type) => paths[type] !== undefined,
  get session() { return session; },
  events,
  ui,
  navigate,
};

// --- start ---------------------------------------------------------------------------------------
async function start() {
  applyTheme(localStorage.getItem(THEME_KEY));
  addEventListener("hashchange", route);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      const reply = await api.validateToken(token);
      await startSession(reply, await api.myProjects(token));
      return;
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      if (err.status === 401 || err.status === 404) {
        renderSignIn({ notice: "Your session expired — sign in again.", expired: true });
        return;
      }
    }
  }
  renderSignIn();
}

start();
