"""Interop peer: Python websockets (sync) client against a server under test.

    python py_interop_client.py ws://127.0.0.1:PORT/

Sends text and binary messages of each interesting size, checks each echo
byte for byte, sends fragmented messages, sends a ping and waits for its pong, then closes with 1000
and checks the close handshake completed. Exits 0 on success; any mismatch
raises (exit 1) with a message saying which check failed.
"""
import sys

from websockets.sync.client import connect

SIZES = [0, 1, 125, 126, 65536, 1 << 20]
TIMEOUT = 10


def text_of(n):
    # Exactly n UTF-8 bytes, ASCII only so the byte length is the char count.
    return ("abcdefghijklmnopqrstuvwxyz" * (n // 26 + 1))[:n]


def bytes_of(n):
    return bytes((i * 31 ^ (i >> 8)) & 0xFF for i in range(n))


def main():
    url = sys.argv[1]
    # Default options otherwise: the client offers permessage-deflate, which
    # a server without extensions must decline.
    with connect(url, max_size=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        for n in SIZES:
            for message in (text_of(n), bytes_of(n)):
                ws.send(message)
                echo = ws.recv(timeout=TIMEOUT)
                kind = type(message).__name__
                assert type(echo) is type(message), f"{kind} of {n} bytes came back as {type(echo).__name__}"
                assert echo == message, f"{kind} echo of {n} bytes differs (got {len(echo)} bytes)"
        multibyte = "h\u00e9llo \u20ac \U0001d11e"
        ws.send(multibyte)
        assert ws.recv(timeout=TIMEOUT) == multibyte, "multi-byte text echo differs"
        # Fragmented messages: websockets sends an iterable as fragments.
        ws.send(["fragmented ", "", "h\u00e9llo \u20ac"])
        assert ws.recv(timeout=TIMEOUT) == "fragmented h\u00e9llo \u20ac", "fragmented text echo differs"
        ws.send([b"\x00\x01", b"", bytes_of(70000), b"\xff"])
        expected = b"\x00\x01" + bytes_of(70000) + b"\xff"
        assert ws.recv(timeout=TIMEOUT) == expected, "fragmented binary echo differs"
        pong = ws.ping(b"interop ping")
        assert pong.wait(TIMEOUT), "no pong for our ping"
        ws.close(1000, "done")
        assert ws.close_code == 1000, f"server answered close with {ws.close_code}"
    print("python client: all echoes, ping and close 1000 OK")


if __name__ == "__main__":
    main()
