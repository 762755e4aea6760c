// The VNC console: noVNC's RFB (the vendored @novnc/novnc package) over the node's console
// proxy.  The page is opened with ?path=console/vnc%3Ftoken%3D<token> (the URL the compute API
// answers, as Nova's novncproxy_base_url) or ?token=<token>; the token is good for one connection.
import RFB from "../vendor/novnc/core/rfb.js";

const params = new URLSearchParams(location.search);
const path = params.get("path") || `console/vnc?token=${encodeURIComponent(params.get("token") || "")}`;
const status = document.getElementById("status");
const cad = document.getElementById("cad");

function say(text, state = "") {
  status.textContent = text;
  status.dataset.state = state;
}

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const url = `${scheme}//${location.host}/${path.replace(/^\/+/, "")}`;
const rfb = new RFB(document.getElementById("screen"), url, { wsProtocols: ["binary"], shared: true });
rfb.scaleViewport = true;
rfb.focusOnClick = true;
window.cloudboxConsole = rfb; // for tests and the curious: the RFB object of this page

rfb.addEventListener("connect", () => {
  say("Connected");
  cad.disabled = false;
  rfb.focus();
});
rfb.addEventListener("desktopname", (event) => { document.title = `Console: ${event.detail.name}`; });
rfb.addEventListener("disconnect", (event) => {
  cad.disabled = true;
  say(event.detail.clean ? "Disconnected" :
    "The console could not be reached: its link may have expired or been used already. Ask for a new one.",
  event.detail.clean ? "" : "error");
});
rfb.addEventListener("securityfailure", (event) => say(`Refused: ${event.detail.reason || "security failure"}`, "error"));
cad.addEventListener("click", () => rfb.sendCtrlAltDel());
