// Key pairs: list, import a public key, generate a pair. Nova stopped generating keys at 2.92, so
// the browser makes the pair (WebCrypto: Ed25519 where the browser has it, else RSA 3072), imports
// only the public half, and offers the private half once as a download.

const NOVA = { "OpenStack-API-Version": "compute 2.92" };
const enc = new TextEncoder();

function u32(n) { return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]); }
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
/** SSH wire "string": a length then the bytes. */
function sshString(bytes) { const b = typeof bytes === "string" ? enc.encode(bytes) : bytes; return concat(u32(b.length), b); }
/** SSH wire "mpint" of a big-endian unsigned number. */
function mpint(bytes) {
  let b = bytes;
  while (b.length > 1 && b[0] === 0) b = b.slice(1);
  if (b[0] & 0x80) b = concat(new Uint8Array([0]), b);
  return sshString(b);
}
function b64(bytes) { let s = ""; for (const x of bytes) s += String.fromCharCode(x); return btoa(s); }
function unb64url(text) { return Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)); }
function armor(label, bytes, width) {
  const lines = b64(bytes).match(new RegExp(`.{1,${width}}`, "g"));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** An Ed25519 pair: the OpenSSH public line and the private key in OpenSSH's own format
 * ("openssh-key-v1", unencrypted), which ssh and ssh-keygen read. */
async function ed25519Pair(comment) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const seed = pkcs8.slice(pkcs8.length - 32); // PKCS#8 for Ed25519 ends with the 32-byte seed
  const pubBlob = concat(sshString("ssh-ed25519"), sshString(pub));
  const check = crypto.getRandomValues(new Uint8Array(4));
  let secret = concat(check, check, sshString("ssh-ed25519"), sshString(pub), sshString(concat(seed, pub)), sshString(comment));
  const pad = (8 - (secret.length % 8)) % 8;
  secret = concat(secret, Uint8Array.from({ length: pad }, (_, i) => i + 1));
  const file = concat(enc.encode("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""),
    u32(1), sshString(pubBlob), sshString(secret));
  return { publicKey: `ssh-ed25519 ${b64(pubBlob)} ${comment}`, privateKey: armor("OPENSSH PRIVATE KEY", file, 70), type: "Ed25519" };
}

/** An RSA 3072 pair: the OpenSSH public line and the private key as PKCS#8 PEM (ssh reads it). */
async function rsaPair(comment) {
  const pair = await crypto.subtle.generateKey({ name: "RSASSA-PKCS1-v1_5", modulusLength: 3072,
    publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const blob = concat(sshString("ssh-rsa"), mpint(unb64url(jwk.e)), mpint(unb64url(jwk.n)));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  return { publicKey: `ssh-rsa ${b64(blob)} ${comment}`, privateKey: armor("PRIVATE KEY", pkcs8, 64), type: "RSA 3072" };
}

async function makePair(comment) {
  try {
    return await ed25519Pair(comment);
  } catch {
    return rsaPair(comment); // a browser without WebCrypto's Ed25519
  }
}

/** Offer the private key once: a download link, shown in this dialog only. */
function offerPrivateKey(ctx, name, privateKey, note) {
  const { h } = ctx.ui;
  const url = URL.createObjectURL(new Blob([privateKey], { type: "application/x-pem-file" }));
  const link = h("a", { href: url, download: `${name}.pem`, class: "download", id: "private-key-download" }, `Download ${name}.pem`);
  const d = ctx.ui.dialog(`Private key of ${name}`, h("div", null,
    h("p", { class: "warning" }, "This is the only time the private key is offered: cloudbox does not keep it."),
    note ? h("p", null, note) : null,
    h("p", null, link)), [{ label: "Done", primary: true }]);
  d.el.addEventListener("close", () => URL.revokeObjectURL(url));
}

export default {
  id: "keypairs",
  title: "Key pairs",
  group: "project",
  order: 50,
  async render(root, ctx) {
    const { h, table, form, dialog, confirm } = ctx.ui;
    const listArea = h("div");
    const keypairsUrl = ctx.url("compute", "/os-keypairs");

    async function refresh() {
      const pairs = (await ctx.api("GET", keypairsUrl, null, NOVA)).data.keypairs.map((k) => k.keypair);
      listArea.replaceChildren(table([
        { label: "Name", value: (k) => k.name },
        { label: "Type", value: (k) => k.type },
        { label: "Fingerprint", value: (k) => h("span", { class: "mono" }, k.fingerprint) },
        { label: "", value: (k) => h("button", { type: "button", class: "danger", onclick: () => remove(k.name) }, "Delete") },
      ], pairs, { empty: "No key pairs yet.", key: (k) => k.name }));
    }

    async function remove(name) {
      if (!(await confirm(`Delete key pair ${name}?`, { yes: "Delete" }))) return;
      try { await ctx.api("DELETE", `${keypairsUrl}/${encodeURIComponent(name)}`, null, NOVA); await refresh(); } catch (err) { ctx.ui.showError(err); }
    }

    function importDialog() {
      const d = dialog("Import a public key", form([
        { name: "name", label: "Name", required: true },
        { name: "public_key", label: "Public key (OpenSSH)", type: "textarea", required: true, placeholder: "ssh-ed25519 AAAA… you@host" },
        { name: "file", label: "…or read it from a file", type: "file", accept: ".pub,text/plain" },
      ], async (v) => {
        const key = v.public_key.trim() || (v.file ? (await v.file.text()).trim() : "");
        await ctx.api("POST", keypairsUrl, { keypair: { name: v.name, public_key: key, type: "ssh" } }, NOVA);
        d.close();
        await refresh();
      }, { submit: "Import" }));
      const fileInput = d.el.querySelector("input[type=file]");
      fileInput.addEventListener("change", async () => {
        if (fileInput.files[0]) d.el.querySelector("textarea").value = (await fileInput.files[0].text()).trim();
      });
    }

    function generateDialog() {
      const d = dialog("Generate a key pair", form([
        { name: "name", label: "Name", required: true },
      ], async (v) => {
        if (!globalThis.crypto || !crypto.subtle) {
          // No WebCrypto (not a secure context): Nova makes the pair at 2.91, its last microversion that does.
          const reply = await ctx.api("POST", keypairsUrl, { keypair: { name: v.name, type: "ssh" } }, { "OpenStack-API-Version": "compute 2.91" });
          d.close();
          await refresh();
          offerPrivateKey(ctx, v.name, reply.data.keypair.private_key, "Generated by the cloud.");
          return;
        }
        const pair = await makePair(v.name);
        await ctx.api("POST", keypairsUrl, { keypair: { name: v.name, public_key: pair.publicKey, type: "ssh" } }, NOVA);
        d.close();
        await refresh();
        offerPrivateKey(ctx, v.name, pair.privateKey, `An ${pair.type} key made in this browser; only its public half was sent.`);
      }, { submit: "Generate" }));
    }

    root.append(ctx.ui.screenHead("Key pairs",
      { label: "Import public key", onClick: importDialog },
      { label: "Generate key pair", primary: true, onClick: generateDialog }), listArea);
    await refresh();
    return undefined;
  },
};
