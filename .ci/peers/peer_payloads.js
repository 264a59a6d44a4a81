// Payloads the Node peer client sends: the same patterns as
// peer_payloads.py, so every peer checks the same thing.
"use strict";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 ";
// Multi-byte UTF-8 (2, 3 and 4 bytes a character) so text is not just ASCII.
const UNICODE = "h\u00e9llo w\u00f6rld \u20ac \u{1d11e} ".repeat(20000);

/** An ASCII text of exactly `size` bytes, shifted by the size. */
function text(size) {
  let out = "";
  for (let i = 0; i < size; i++) out += ALPHABET[(i + size) % ALPHABET.length];
  return out;
}

/** `size` bytes covering every byte value. */
function binary(size) {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + size) & 0xff;
  return out;
}

/** [kind, payload] pairs: text and binary at each size, then Unicode. */
function messages(sizeArg) {
  const out = [];
  for (const s of sizeArg.split(",").filter(Boolean)) {
    const size = Number(s);
    out.push(["text", text(size)]);
    out.push(["binary", binary(size)]);
  }
  out.push(["text", UNICODE]);
  return out;
}

function describe(kind, payload) {
  return `${kind} of ${payload.length} ${kind === "text" ? "chars" : "bytes"}`;
}

module.exports = { text, binary, messages, describe };
