// Every screen of the dashboard, by file name. Each is loaded with import(); one that does not
// exist yet (or fails to load) is skipped with a warning, so each helper's screens ship alone.
const NAMES = [
  "overview", "servers", "images", "volumes", "keypairs",
  "networks", "routers", "floating_ips", "security_groups", "topology", "containers", "stacks",
  "admin_identity", "admin_compute", "cluster",
];

/** The screens that loaded, sorted by group then order: [{id, title, group, order, render}]. */
export async function loadScreens() {
  const loaded = await Promise.all(NAMES.map(async (name) => {
    try {
      const screen = (await import(`./${name}.js`)).default;
      if (!screen || !screen.id || typeof screen.render !== "function") {
        console.warn(`screen ${name}.js has no default export {id, render}; skipped`);
        return null;
      }
      return screen;
    } catch (err) {
      console.warn(`screen ${name}.js not loaded; skipped:`, err.message);
      return null;
    }
  }));
  const groups = { project: 0, admin: 1 };
  return loaded.filter(Boolean).sort((a, b) =>
    (groups[a.group] ?? 2) - (groups[b.group] ?? 2) || (a.order ?? 100) - (b.order ?? 100));
}
