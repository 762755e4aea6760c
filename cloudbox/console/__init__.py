"""Remote consoles: one-time console tokens and the websocket proxy to guests' VNC and serial ports.

| module     | what                                                                         |
|------------|------------------------------------------------------------------------------|
| tokens.py  | the token: sealed claims (server, protocol, host, expiry, nonce); pure       |
| service.py | issuing tokens, refusing spent ones, finding the guest's socket              |
| proxy.py   | the websocket routes /console/vnc and /console/serial, local or via the peer |
| wsclient.py| a small websocket client (wsproto over trio): the hop to the guest's node    |

DESIGN.md says why tokens are sealed rather than replicated.
"""
