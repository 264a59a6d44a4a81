#!/usr/bin/env python3
"""Writes the seed corpus: fuzz/corpus/<target>/seed-<name>.

Run from anywhere: `python3 fuzz/make_seeds.py`. The seeds are small,
meaningful inputs (RFC 6455 §5.7 examples, fragmented messages, close frames,
the §1.3 handshake) so the fuzzers start from the interesting states rather
than from nothing. Files the fuzzer adds next to them are not tracked (see
.gitignore).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # the RFC 6455 §5.7 example key

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode, payload, fin=True, mask=None, rsv=0, force_len=None):
    """One frame; `force_len` picks a non-minimal length form (16 or 64)."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if force_len == 64 or (force_len is None and n > 0xFFFF):
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    elif force_len == 16 or (force_len is None and n > 125):
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | n])
    if mask is None:
        return head + payload
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def close_body(code, reason=b""):
    return struct.pack(">H", code) + reason


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# frame_header: bare headers of each length form, and a few bad ones.
write("frame_header", "rfc-hello-masked", frame(TEXT, b"Hello", mask=KEY))
write("frame_header", "rfc-hello-unmasked", frame(TEXT, b"Hello"))
write("frame_header", "len16-256", frame(BINARY, b"")[:1] + b"\x7e\x01\x00")
write("frame_header", "len64-65536", bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]))
write("frame_header", "len64-masked", bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]) + KEY)
write("frame_header", "non-minimal-16", frame(BINARY, b"abcde", force_len=16))
write("frame_header", "len64-top-bit", bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]))
write("frame_header", "reserved-opcode", bytes([0x83, 0x00]))
write("frame_header", "close-rsv1", bytes([0xC8, 0x80]) + KEY)

# protocol_*: 6 bytes of settings (see fuzz/src/lib.rs), then the wire bytes.
WHOLE = bytes([0, 0, 0, 0])  # every chunk: everything left
BYTEWISE = bytes([1, 1, 1, 1])  # one byte at a time
MIXED = bytes([3, 1, 7, 0])
LIMITS = 0x0D  # max_frame 64 << 5 = 2 KiB, max_message 2 KiB << 1 = 4 KiB


def settings(chunks, limits=LIMITS, flags=0):
    return chunks + bytes([limits, flags])


for target, mask in (("protocol_server", KEY), ("protocol_client", None)):
    hello = frame(TEXT, b"Hello", mask=mask)
    fragmented = (
        frame(TEXT, b"Hel", fin=False, mask=mask)
        + frame(PING, b"Hello", mask=mask)
        + frame(CONT, b"lo", mask=mask)
    )
    utf8_split = "κόσμε".encode()
    write(target, "rfc-hello", settings(WHOLE) + hello)
    write(target, "rfc-fragmented-with-ping", settings(BYTEWISE) + fragmented)
    write(
        target,
        "binary-256-then-close",
        settings(MIXED) + frame(BINARY, bytes(range(256)), mask=mask)
        + frame(CLOSE, close_body(1000, b"bye"), mask=mask),
    )
    write(
        target,
        "utf8-split-across-fragments",
        settings(MIXED)
        + frame(TEXT, utf8_split[:3], fin=False, mask=mask)
        + frame(CONT, utf8_split[3:], mask=mask),
    )
    write(
        target,
        "invalid-utf8-first-fragment",
        settings(WHOLE) + frame(TEXT, b"\xce\xba\xf4\x90\x80\x80", fin=False, mask=mask),
    )
    write(
        target,
        "pong-close-empty",
        settings(WHOLE) + frame(PONG, b"", mask=mask) + frame(CLOSE, b"", mask=mask),
    )
    write(
        target,
        "close-first-then-peer-close",
        settings(MIXED, flags=1) + hello + frame(CLOSE, close_body(1001), mask=mask),
    )
    write(
        target,
        "too-big-for-limits",
        settings(WHOLE, limits=0x00) + frame(BINARY, bytes(100), mask=mask),
    )
    write(
        target,
        "bad-close-code",
        settings(WHOLE) + frame(CLOSE, close_body(1005), mask=mask),
    )

# websocket_driver: 8 bytes of settings (see run_websocket_driver in
# fuzz/src/lib.rs), then the peer's frames, 4 bytes a frame (frame_spec),
# or (flag RAW) the wire bytes themselves.
CLIENT, RAW, CLOSE_FIRST, ECHO_WRITE, ECHO_SEND, RESET, INTERRUPT, LEFTOVER = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80,
)
S_TEXT, S_BINARY, S_CONT, S_PING, S_PONG, S_CLOSE = 0, 1, 2, 4, 5, 6
M_RSV, M_WRONG_MASK, M_CORRUPT = 4, 5, 6


def driver(flags, frames, limits=0, write=0, cut=0, reads=(0, 0, 0, 0)):
    return bytes([flags, limits, write, cut]) + bytes(reads) + b"".join(frames)


def spec(sel, length, fin=True, mistake=0, seed=7):
    """One frame: `length` is ("tiny", n<126), ("mid", n<16384) or
    ("large", k): 16384 + 5k bytes, k < 16384."""
    kind, n = length
    s1, s2 = {
        "tiny": (0x00, n),
        "mid": (0x40 | (n >> 8), n & 0xFF),
        "large": (0x80 | (n >> 8), n & 0xFF),
    }[kind]
    return bytes([sel | (0 if fin else 8) | (mistake << 4), s1, s2, seed])


TINY, MID = ("tiny", 5), ("mid", 300)
LARGE = ("large", 16383)  # 98299 bytes: read straight into the message
SMALL_LIMITS = 0x80 | 9  # max_frame = max_message = 32 << 9 = 16 KiB

for role, name in ((0, "server"), (CLIENT, "client")):
    write(
        "websocket_driver",
        f"{name}-hello-fragments-ping-close",
        driver(
            role | ECHO_WRITE,
            [
                spec(S_TEXT, TINY),
                spec(S_TEXT, MID, fin=False),
                spec(S_PING, TINY),
                spec(S_CONT, MID),
                spec(S_CLOSE, ("tiny", 10)),
            ],
            reads=(3, 1, 100, 0),
        ),
    )
    write(
        "websocket_driver",
        f"{name}-large-text-in-small-reads",
        driver(
            role | ECHO_SEND | INTERRUPT,
            [spec(S_TEXT, LARGE, fin=False), spec(S_CONT, LARGE), spec(S_BINARY, LARGE)],
            write=3,
            reads=(100, 1, 129, 0),
        ),
    )
    write(
        "websocket_driver",
        f"{name}-large-over-the-limit",
        driver(role, [spec(S_BINARY, MID), spec(S_BINARY, LARGE)], limits=SMALL_LIMITS),
    )
    write(
        "websocket_driver",
        f"{name}-invalid-utf8-in-large-text",
        driver(
            role | RESET,
            [spec(S_TEXT, LARGE, mistake=M_CORRUPT, seed=200)],
            reads=(0, 37, 0, 5),
        ),
    )
    write(
        "websocket_driver",
        f"{name}-cut-mid-large-frame",
        driver(
            role | LEFTOVER | RESET,
            [spec(S_PONG, TINY), spec(S_BINARY, LARGE)],
            cut=100,
            reads=(200, 0, 0, 0),
        ),
    )
    write(
        "websocket_driver",
        f"{name}-close-first",
        driver(
            role | CLOSE_FIRST | ECHO_WRITE,
            [spec(S_PING, TINY), spec(S_TEXT, TINY), spec(S_CLOSE, ("tiny", 2))],
        ),
    )
    write(
        "websocket_driver",
        f"{name}-mistakes",
        driver(
            role,
            [spec(S_TEXT, TINY, mistake=M_RSV), spec(S_BINARY, TINY, mistake=M_WRONG_MASK)],
            reads=(1, 1, 1, 1),
        ),
    )

# Raw mode: RFC 6455 §5.7 frames as they are, a byte at a time.
write(
    "websocket_driver",
    "raw-server-rfc-hello-ping-close",
    driver(
        RAW | ECHO_SEND,
        [
            frame(TEXT, b"Hello", mask=KEY),
            frame(PING, b"Hello", mask=KEY),
            frame(CLOSE, close_body(1000), mask=KEY),
        ],
        reads=(1, 1, 1, 1),
    ),
)
write(
    "websocket_driver",
    "raw-client-rfc-fragmented",
    driver(
        CLIENT | RAW,
        [frame(TEXT, b"Hel", fin=False), frame(CONT, b"lo"), frame(PONG, b"")],
        reads=(2, 0, 0, 0),
    ),
)

# The opening handshake of RFC 6455 §1.3 (with the sample nonce from §4.1).
REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)
write("handshake_request", "rfc-1-3", REQUEST)
write(
    "handshake_request",
    "minimal",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
    b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
)
write(
    "handshake_request",
    "version-8",
    REQUEST.replace(b"Version: 13", b"Version: 8"),
)
write("handshake_request", "post", REQUEST.replace(b"GET", b"POST", 1))
write("handshake_response", "rfc-1-3", RESPONSE)
write(
    "handshake_response",
    "wrong-accept",
    RESPONSE.replace(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", b"AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
)
write(
    "handshake_response",
    "404",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
)
# lifecycle: the first byte picks the chunk size (byte % 64 + 1); the rest is
# the request, then the client's frames.
write("lifecycle", "rfc-1-3-whole-then-hello", b"\x3f" + REQUEST + frame(TEXT, b"Hello", mask=KEY))
write("lifecycle", "rfc-1-3-bytewise-then-close", b"\x00" + REQUEST + frame(CLOSE, b"\x03\xe8", mask=KEY))
write("lifecycle", "post-refused", b"\x07" + REQUEST.replace(b"GET", b"POST", 1))
write("lifecycle", "too-large", b"\x1f" + b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 600 + b"\r\n\r\n")
