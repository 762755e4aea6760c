// Administration of identity (Keystone v3): projects, users, groups and their members, roles,
// and who holds which role where (grant, revoke).
import { h, table, form, confirm, statusBadge, dialog } from "../ui.js";
import { shortId, button, section, get, live, region, tabbedScreen, choices, select } from "../more/kit.js";

/** The rows of a Keystone list. */
const list = async (ctx, path, key) => (await get(ctx, "identity", path))[key];

function projectsTab(ctx) {
  return async (pane) => {
    const rows = region(async () => table([
      { label: "Name", value: (p) => h("strong", null, p.name) },
      { label: "ID", value: (p) => shortId(p.id) },
      { label: "Description", value: (p) => p.description || "" },
      { label: "Enabled", value: (p) => statusBadge(p.enabled ? "enabled" : "DISABLED") },
      { label: "", value: (p) => h("div", { class: "buttons" },
          button(p.enabled ? "Disable" : "Enable", async () => {
            await ctx.api("PATCH", ctx.url("identity", `/projects/${p.id}`), { project: { enabled: !p.enabled } });
            await rows.refresh();
          }),
          button("Delete", async () => {
            if (!(await confirm(`Delete project ${p.name}? Its resources stay until deleted.`))) return;
            await ctx.api("DELETE", ctx.url("identity", `/projects/${p.id}`));
            await rows.refresh();
          }, { class: "danger", "aria-label": `Delete project ${p.name}` })) },
    ], await list(ctx, "/projects", "projects"), { key: (p) => p.id }));
    const create = form([
      { name: "name", label: "Name", required: true },
      { name: "description", label: "Description" },
      { name: "enabled", label: "Enabled", type: "checkbox", value: true },
    ], async (v, el) => {
      await ctx.api("POST", ctx.url("identity", "/projects"),
        { project: { name: v.name.trim(), description: v.description, enabled: v.enabled, domain_id: "default" } });
      el.reset();
      await rows.refresh();
    }, { submit: "Create project" });
    create.id = "project-create";
    pane.append(section("Create a project", create), section("Projects", rows.node));
    await rows.refresh();
    return live(ctx, [{ service: "identity" }], rows.refresh);  // another admin's change
  };
}

function usersTab(ctx) {
  return async (pane) => {
    let projects = [];
    const rows = region(async () => {
      projects = await list(ctx, "/projects", "projects");
      defaultProject.replaceChildren(...select(choices(projects, (p) => p.name, "(none)"), defaultProject.value).children);
      return table([
        { label: "Name", value: (u) => h("strong", null, u.name) },
        { label: "ID", value: (u) => shortId(u.id) },
        { label: "Email", value: (u) => u.email || "" },
        { label: "Default project", value: (u) => projects.find((p) => p.id === u.default_project_id)?.name || "" },
        { label: "Enabled", value: (u) => statusBadge(u.enabled ? "enabled" : "DISABLED") },
        { label: "", value: (u) => h("div", { class: "buttons" },
            button("Set password", () => {
              const d = dialog(`New password for ${u.name}`, form([{ name: "password", label: "Password", type: "password", required: true }],
                async (v) => {
                  await ctx.api("PATCH", ctx.url("identity", `/users/${u.id}`), { user: { password: v.password } });
                  d.close();
                }, { submit: "Set password" }));
            }),
            button(u.enabled ? "Disable" : "Enable", async () => {
              await ctx.api("PATCH", ctx.url("identity", `/users/${u.id}`), { user: { enabled: !u.enabled } });
              await rows.refresh();
            }),
            button("Delete", async () => {
              if (!(await confirm(`Delete user ${u.name}?`))) return;
              await ctx.api("DELETE", ctx.url("identity", `/users/${u.id}`));
              await rows.refresh();
            }, { class: "danger", "aria-label": `Delete user ${u.name}` })) },
      ], await list(ctx, "/users", "users"), { key: (u) => u.id });
    });
    const create = form([
      { name: "name", label: "Name", required: true },
      { name: "password", label: "Password", type: "password", required: true },
      { name: "email", label: "Email", type: "email" },
      { name: "default_project_id", label: "Default project", type: "select", options: [] },
      { name: "enabled", label: "Enabled", type: "checkbox", value: true },
    ], async (v, el) => {
      const user = { name: v.name.trim(), password: v.password, enabled: v.enabled, domain_id: "default" };
      if (v.email) user.email = v.email;
      if (v.default_project_id) user.default_project_id = v.default_project_id;
      await ctx.api("POST", ctx.url("identity", "/users"), { user });
      el.reset();
      await rows.refresh();
    }, { submit: "Create user" });
    create.id = "user-create";
    const defaultProject = create.elements.default_project_id;
    pane.append(section("Create a user", create), section("Users", rows.node));
    await rows.refresh();
    return live(ctx, [{ service: "identity" }], rows.refresh);  // another admin's change
  };
}

function groupsTab(ctx) {
  return async (pane) => {
    const members = (group, users) => {
      const who = region(async () => {
        const inGroup = await list(ctx, `/groups/${group.id}/users`, "users");
        const ids = new Set(inGroup.map((u) => u.id));
        const picker = h("select", { "aria-label": `User to add to ${group.name}` },
          users.filter((u) => !ids.has(u.id)).map((u) => h("option", { value: u.id }, u.name)));
        const member = (u, verb) => ctx.api(verb, ctx.url("identity", `/groups/${group.id}/users/${u}`)).then(who.refresh);
        return [
          h("ul", { class: "plain" }, inGroup.map((u) => h("li", { "data-user-id": u.id }, u.name, " ",
            button("Remove", () => member(u.id, "DELETE"), { class: "small danger" })))),
          picker.options.length ? h("div", { class: "buttons" }, picker, button("Add member", () => member(picker.value, "PUT"))) : null,
        ];
      });
      who.refresh();
      return who.node;
    };
    const rows = region(async () => {
      const [groups, users] = await Promise.all([list(ctx, "/groups", "groups"), list(ctx, "/users", "users")]);
      return table([
        { label: "Name", value: (g) => h("strong", null, g.name) },
        { label: "ID", value: (g) => shortId(g.id) },
        { label: "Description", value: (g) => g.description || "" },
        { label: "Members", value: (g) => members(g, users) },
        { label: "", value: (g) => button("Delete", async () => {
            if (!(await confirm(`Delete group ${g.name}?`))) return;
            await ctx.api("DELETE", ctx.url("identity", `/groups/${g.id}`));
            await rows.refresh();
          }, { class: "danger", "aria-label": `Delete group ${g.name}` }) },
      ], groups, { empty: "No groups.", key: (g) => g.id });
    });
    const create = form([{ name: "name", label: "Name", required: true }, { name: "description", label: "Description" }],
      async (v, el) => {
        await ctx.api("POST", ctx.url("identity", "/groups"),
          { group: { name: v.name.trim(), description: v.description, domain_id: "default" } });
        el.reset();
        await rows.refresh();
      }, { submit: "Create group" });
    pane.append(section("Create a group", create), section("Groups", rows.node));
    await rows.refresh();
    return live(ctx, [{ service: "identity" }], rows.refresh);  // another admin's change
  };
}

/** The API path of a grant: scope (projects/ID, domains/ID or system) × actor (users/ID or groups/ID) × role. */
function grantPath(a) {
  const scope = a.scope.project ? `/projects/${a.scope.project.id}` : a.scope.domain ? `/domains/${a.scope.domain.id}` : "/system";
  const actor = a.user ? `/users/${a.user.id}` : `/groups/${a.group.id}`;
  return `${scope}${actor}/roles/${a.role.id}`;
}

function rolesTab(ctx) {
  return async (pane) => {
    const scopeName = (a) => a.scope.project ? `project ${a.scope.project.name || a.scope.project.id}`
      : a.scope.domain ? `domain ${a.scope.domain.name || a.scope.domain.id}` : "system";
    const assignments = region(async () => {
      const [roles, users, groups, projects, found] = await Promise.all([
        list(ctx, "/roles", "roles"), list(ctx, "/users", "users"), list(ctx, "/groups", "groups"),
        list(ctx, "/projects", "projects"), list(ctx, "/role_assignments?include_names=true", "role_assignments")]);
      const fill = (name, opts) => grant.elements[name].replaceChildren(...select(opts, grant.elements[name].value).children);
      fill("actor", [...choices(users, (u) => `user ${u.name}`).map((o) => ({ ...o, value: `users/${o.value}` })),
                     ...choices(groups, (g) => `group ${g.name}`).map((o) => ({ ...o, value: `groups/${o.value}` }))]);
      fill("project", choices(projects, (p) => p.name));
      fill("role", choices(roles, (r) => r.name));
      return [
        section("Role assignments", table([
          { label: "Role", value: (a) => h("strong", null, a.role.name || a.role.id) },
          { label: "Who", value: (a) => a.user ? `user ${a.user.name || a.user.id}` : `group ${a.group.name || a.group.id}` },
          { label: "Where", value: scopeName },
          { label: "", value: (a) => a.scope["OS-INHERIT:inherited_to"] ? "inherited" : button("Revoke", async () => {
              if (!(await confirm(`Revoke ${a.role.name} from ${(a.user || a.group).name} on ${scopeName(a)}?`))) return;
              await ctx.api("DELETE", ctx.url("identity", grantPath(a)));
              await assignments.refresh();
            }, { class: "danger" }) },
        ], found, { empty: "No role assignments." })),
        section("Roles", table([
          { label: "Name", value: (r) => h("strong", null, r.name) },
          { label: "ID", value: (r) => shortId(r.id) },
          { label: "", value: (r) => button("Delete", async () => {
              if (!(await confirm(`Delete role ${r.name}? Every assignment of it goes too.`))) return;
              await ctx.api("DELETE", ctx.url("identity", `/roles/${r.id}`));
              await assignments.refresh();
            }, { class: "danger", "aria-label": `Delete role ${r.name}` }) },
        ], roles, { key: (r) => r.id })),
      ];
    });
    const grant = form([
      { name: "actor", label: "User or group", type: "select", options: [] },
      { name: "project", label: "Project", type: "select", options: [] },
      { name: "role", label: "Role", type: "select", options: [] },
    ], async (v) => {
      await ctx.api("PUT", ctx.url("identity", `/projects/${v.project}/${v.actor}/roles/${v.role}`));
      await assignments.refresh();
    }, { submit: "Grant role" });
    grant.id = "role-grant";
    const createRole = form([{ name: "name", label: "Role name", required: true }], async (v, el) => {
      await ctx.api("POST", ctx.url("identity", "/roles"), { role: { name: v.name.trim() } });
      el.reset();
      await assignments.refresh();
    }, { submit: "Create role" });
    pane.append(section("Grant a role on a project", grant), section("Create a role", createRole), assignments.node);
    await assignments.refresh();
    return live(ctx, [{ service: "identity" }], assignments.refresh);  // another admin's change
  };
}

export default tabbedScreen({ id: "admin_identity", title: "Identity", group: "admin", order: 10 }, (ctx) => [
  { id: "projects", title: "Projects", render: projectsTab(ctx) },
  { id: "users", title: "Users", render: usersTab(ctx) },
  { id: "groups", title: "Groups", render: groupsTab(ctx) },
  { id: "roles", title: "Roles and assignments", render: rolesTab(ctx) },
]);
