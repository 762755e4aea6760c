// The serial console: xterm.js (the vendored @xterm/xterm package) on the node's console proxy.
// Opened with ?token=<token> (the token of the wss:// URL the compute API answers for a serial
// console); the guest's bytes are written to the terminal, the keys typed are sent as they are.
import { Terminal } from "../vendor/xterm/lib/xterm.mjs";
import { FitAddon } from "../vendor/xterm-addon-fit/lib/addon-fit.mjs";

const params = new URLSearchParams(location.search);
const status = document.getElementById("status");
const say = (text, state = "") => { status.textContent = text; status.dataset.state = state; };

const terminal = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open(document.getElementById("screen"));
fit.fit();
addEventListener("resize", () => fit.fit());
window.cloudboxConsole = terminal; // for tests: the terminal's buffer holds what the guest wrote

const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const socket = new WebSocket(`${scheme}//${location.host}/console/serial?token=${encodeURIComponent(params.get("token") || "")}`,
  ["binary"]);
socket.binaryType = "arraybuffer";
const encoder = new TextEncoder();
socket.addEventListener("open", () => { say("Connected"); terminal.focus(); });
socket.addEventListener("message", (event) => {
  terminal.write(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
});
socket.addEventListener("close", (event) => {
  say(event.wasClean ? "Disconnected" :
    "The console could not be reached: its link may have expired or been used already. Ask for a new one.",
  event.wasClean ? "" : "error");
});
terminal.onData((data) => { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data)); });
