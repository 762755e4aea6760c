// The cloudbox web UI talks to the same OpenStack APIs as every other client.
"use strict";
const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("cloudbox-token");

async function api(method, path, body, extraHeaders) {
  const headers = { "Content-Type": "application/json", ...(extraHeaders || {}) };
  if (token) headers["X-Auth-Token"] = token;
  const resp = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new Error((data && data.error && data.error.message) || resp.statusText);
  return { data, headers: resp.headers };
}

function fill(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
    return tr;
  }));
}

async function showOverview() {
  const { data } = await api("GET", "/identity/v3/auth/tokens", null, { "X-Subject-Token": token });
  const t = data.token;
  $("#who").textContent = `${t.user.name}` + (t.project ? ` · project ${t.project.name}` : "");
  $("#token-info").textContent = `Roles: ${(t.roles || []).map((r) => r.name).join(", ") || "none"} · expires ${t.expires_at}`;
  const projects = (await api("GET", "/identity/v3/auth/projects")).data.projects;
  fill($("#projects"), projects.map((p) => [p.name, p.id, p.domain_id]));
  fill($("#catalog"), (t.catalog || []).flatMap((s) =>
    s.endpoints.filter((e) => e.interface === "public").map((e) => [s.type, s.name, e.url])));
  $("#signin").hidden = true; $("#overview").hidden = false; $("#signout").hidden = false;
}

$("#signin").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const auth = { identity: { methods: ["password"], password: { user: {
    name: f.get("user"), domain: { name: f.get("domain") }, password: f.get("password") } } } };
  if (f.get("project")) auth.scope = { project: { name: f.get("project"), domain: { name: f.get("domain") } } };
  try {
    token = null;
    const { headers } = await api("POST", "/identity/v3/auth/tokens", { auth });
    token = headers.get("X-Subject-Token");
    sessionStorage.setItem("cloudbox-token", token);
    $("#signin-error").textContent = "";
    await showOverview();
  } catch (err) { $("#signin-error").textContent = err.message; }
});

$("#signout").addEventListener("click", async () => {
  try { await api("DELETE", "/identity/v3/auth/tokens", null, { "X-Subject-Token": token }); } catch (e) { /* already invalid */ }
  token = null; sessionStorage.removeItem("cloudbox-token"); location.reload();
});

if (token) showOverview().catch(() => { token = null; sessionStorage.removeItem("cloudbox-token"); });
