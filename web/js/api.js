// Calls to cloudbox's public OpenStack APIs: the same endpoints the CLI uses, nothing private.

/** An API call that failed: `message` is the API's own message, `status` its HTTP status. */
export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.data = data;
  }
}

/** The message inside any OpenStack error body: Keystone/Glance/Cinder/Heat `{error: {message}}`,
 * Nova `{badRequest: {message}}` (any fault name), Neutron `{NeutronError: {message}}`, a bare
 * `{message}`, or Swift's short HTML page. */
export function errorMessage(data, text, status, statusText) {
  if (data && typeof data === "object") {
    if (data.error && data.error.message) return String(data.error.message);
    if (data.NeutronError && data.NeutronError.message) return String(data.NeutronError.message);
    if (typeof data.message === "string" && data.message) return data.message;
    for (const value of Object.values(data)) {
      if (value && typeof value === "object" && typeof value.message === "string") return value.message;
    }
  }
  if (text) {
    const plain = new DOMParser().parseFromString(text, "text/html").body.textContent.replace(/\s+/g, " ").trim();
    if (plain) return plain.slice(0, 500);
  }
  return `${status} ${statusText || "error"}`.trim();
}

/** Parse a response body as JSON when it is JSON; otherwise keep its text. */
function parseBody(text, contentType) {
  if (!text) return { data: null, text: "" };
  if ((contentType || "").includes("json")) {
    try { return { data: JSON.parse(text), text }; } catch { /* fall through: keep the text */ }
  }
  return { data: null, text };
}

/**
 * One HTTP call. `body` is sent as JSON unless it is a Blob/ArrayBuffer/string (sent as is).
 * Resolves `{status, data, headers}`; rejects with ApiError carrying the API's message.
 * `onUnauthorized` is told of every 401, so the shell can show its "session expired" screen.
 */
export async function request(method, url, body, headers, { token, onUnauthorized } = {}) {
  const sent = { ...(headers || {}) };
  if (token) sent["X-Auth-Token"] = token;
  let payload;
  if (body !== undefined && body !== null) {
    if (body instanceof Blob || body instanceof ArrayBuffer || typeof body === "string") {
      payload = body;
    } else {
      payload = JSON.stringify(body);
      if (!Object.keys(sent).some((k) => k.toLowerCase() === "content-type")) sent["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(url, { method, headers: sent, body: payload, credentials: "omit" });
  } catch (err) {
    throw new ApiError(0, `The cloud did not answer (${err.message}).`, null);
  }
  const { data, text } = parseBody(await response.text(), response.headers.get("Content-Type"));
  if (!response.ok) {
    const error = new ApiError(response.status, errorMessage(data, text, response.status, response.statusText), data);
    if (response.status === 401 && onUnauthorized) onUnauthorized(error);
    throw error;
  }
  return { status: response.status, data: data ?? (text || null), headers: response.headers };
}

/**
 * Upload a file with progress (fetch cannot report upload progress; XMLHttpRequest can).
 * `onProgress(loaded, total)` is called as the browser sends the body.
 */
export function upload(method, url, file, headers, { token, onProgress, onUnauthorized } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    if (token) xhr.setRequestHeader("X-Auth-Token", token);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (ev) => {
      if (onProgress) onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    });
    xhr.addEventListener("load", () => {
      const { data, text } = parseBody(xhr.responseText, xhr.getResponseHeader("Content-Type"));
      if (xhr.status >= 200 && xhr.status < 300) {
        if (onProgress) onProgress(file.size, file.size);
        resolve({ status: xhr.status, data: data ?? (text || null) });
        return;
      }
      const error = new ApiError(xhr.status, errorMessage(data, text, xhr.status, xhr.statusText), data);
      if (xhr.status === 401 && onUnauthorized) onUnauthorized(error);
      reject(error);
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "The upload failed: the connection was lost.", null)));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "The upload was cancelled.", null)));
    xhr.send(file);
  });
}

/** The path of a service from the token's catalog (public interface), e.g. "/compute/v2.1".
 * Only the path is kept: the page talks to the node that served it, whatever name it was reached by. */
export function servicePaths(catalog) {
  const paths = {};
  for (const service of catalog || []) {
    const endpoint = (service.endpoints || []).find((e) => e.interface === "public") || (service.endpoints || [])[0];
    if (!endpoint) continue;
    try {
      paths[service.type] = new URL(endpoint.url, location.href).pathname.replace(/\/$/, "");
    } catch { /* an endpoint URL we cannot read is left out */ }
  }
  return paths;
}

const IDENTITY = "/identity/v3";

/** Keystone v3 password authentication; scope is a project name (in the user's domain) or none. */
export async function passwordToken(user, password, domain, project) {
  const auth = {
    identity: { methods: ["password"], password: { user: { name: user, domain: { name: domain || "Default" }, password } } },
  };
  if (project) auth.scope = { project: { name: project, domain: { name: domain || "Default" } } };
  return tokenReply(await request("POST", `${IDENTITY}/auth/tokens`, { auth }));
}

/** A token for another project, from the current one (Keystone's token method). */
export async function rescopeToken(token, projectId) {
  const auth = { identity: { methods: ["token"], token: { id: token } }, scope: { project: { id: projectId } } };
  return tokenReply(await request("POST", `${IDENTITY}/auth/tokens`, { auth }, { "X-Auth-Token": token }));
}

function tokenReply(reply) {
  return { token: reply.headers.get("X-Subject-Token"), body: reply.data.token };
}

/** The projects this token's user may scope to. */
export async function myProjects(token) {
  return (await request("GET", `${IDENTITY}/auth/projects`, null, null, { token })).data.projects || [];
}

/** Revoke a token (sign-out). A token already invalid is not an error here. */
export async function revokeToken(token) {
  try {
    await request("DELETE", `${IDENTITY}/auth/tokens`, null, { "X-Subject-Token": token }, { token });
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 404)) throw err;
  }
}

/** Re-read a token (used when the page is reloaded with a token kept in sessionStorage). */
export async function validateToken(token) {
  const reply = await request("GET", `${IDENTITY}/auth/tokens`, null, { "X-Subject-Token": token }, { token });
  return { token, body: reply.data.token };
}
