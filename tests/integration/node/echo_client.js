#!/usr/bin/env node
// A real Node.js WebSocket client (the `ws` package) against an echo endpoint.
//
//   node echo_client.js ws://127.0.0.1:PORT/path
//
// Connects, sends text and binary messages one at a time, checks that each echo
// comes back unchanged and with the same type, closes with 1000 and prints one
// JSON object on stdout. Exit status 0 only when every check passed.
"use strict";

const crypto = require("crypto");
const WebSocket = require("ws");

const url = process.argv[2];
if (!url) {
  console.error("usage: node echo_client.js ws://host:port/path");
  process.exit(2);
}

const messages = [
  { kind: "text", data: "hello from node" },
  { kind: "text", data: "ünïcødé ✓ 🐋" },
  { kind: "binary", data: Buffer.from([0, 1, 2, 0xfe, 0xff]) },
  { kind: "binary", data: crypto.randomBytes(100000) },  // 64-bit length, several reads
  { kind: "text", data: "x".repeat(70000) },
];

const result = {
  url,
  opened: false,
  protocol: null,
  extensions: null,
  echoes: [],
  all_echoes_ok: false,
  close_code: null,
  close_reason: null,
  error: null,
};

let done = false;
function finish(status) {
  if (done) return;
  done = true;
  clearTimeout(guard);
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exitCode = status;
}

const guard = setTimeout(() => {
  result.error = result.error || "timeout after 15 s";
  finish(1);
  process.exit(1);
}, 15000);

const ws = new WebSocket(url, { handshakeTimeout: 10000 });
let next = 0;

function sendNext() {
  const m = messages[next];
  ws.send(m.data, { binary: m.kind === "binary" });
}

ws.on("open", () => {
  result.opened = true;
  result.protocol = ws.protocol;
  result.extensions = ws.extensions;
  sendNext();
});

ws.on("message", (data, isBinary) => {
  const m = messages[next];
  const sent = m.kind === "binary" ? m.data : Buffer.from(m.data, "utf8");
  const got = Buffer.isBuffer(data) ? data : Buffer.concat(data);
  result.echoes.push({
    kind: m.kind,
    got_kind: isBinary ? "binary" : "text",
    length: sent.length,
    got_length: got.length,
    equal: (isBinary === (m.kind === "binary")) && sent.equals(got),
  });
  next += 1;
  if (next < messages.length) {
    sendNext();
  } else {
    result.all_echoes_ok = result.echoes.length === messages.length && result.echoes.every((e) => e.equal);
    ws.close(1000, "bye from node");
  }
});

ws.on("unexpected-response", (req, res) => {
  result.error = `unexpected HTTP response ${res.statusCode}`;
  finish(1);
  ws.terminate();
});

ws.on("error", (err) => {
  result.error = result.error || String(err && err.message ? err.message : err);
});

ws.on("close", (code, reason) => {
  result.close_code = code;
  result.close_reason = reason.toString("utf8");
  const ok = result.opened && result.all_echoes_ok && code === 1000 && !result.error;
  finish(ok ? 0 : 1);
});
