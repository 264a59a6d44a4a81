"""Interop peer for permessage-deflate (RFC 7692): Python websockets, which
negotiates compression by default, as a client or as an echo server.

    python py_deflate_peer.py client ws://127.0.0.1:PORT/
    python py_deflate_peer.py server 127.0.0.1:0

client: connects (offering permessage-deflate), fails unless the server
accepted it, sends compressible text and random binary messages of every
size in SIZES, checks each echo, closes with 1000; prints the accepted
extension and exits 0.
server: echoes every message with compression on; prints "listening PORT",
then "negotiated EXTENSION" for each connection.
"""
import random
import sys

SIZES = [0, 1, 125, 126, 65536, 1 << 20]
TIMEOUT = 30


def text_of(n):
    return ("compressible json-like text {\"k\": 1} " * (n // 38 + 1))[:n]


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def client(url):
    from websockets.sync.client import connect

    with connect(url, max_size=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        accepted = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert accepted and accepted.startswith("permessage-deflate"), f"not accepted: {accepted!r}"
        for n in SIZES:
            for message in (text_of(n), random_bytes(n, n)):
                ws.send(message)
                echo = ws.recv(timeout=TIMEOUT)
                assert type(echo) is type(message), f"{type(message).__name__} of {n} changed type"
                assert echo == message, f"{type(message).__name__} echo of {n} bytes differs"
        ws.close(1000, "done")
        print(f"extensions {accepted}", flush=True)


def server(listen):
    from websockets.sync.server import serve

    host, port = listen.rsplit(":", 1)

    def echo(ws):
        print(f"negotiated {ws.response.headers.get('Sec-WebSocket-Extensions')}", flush=True)
        try:
            for message in ws:
                ws.send(message)
        except Exception:
            pass

    with serve(echo, host, int(port), max_size=None) as s:
        print(f"listening {s.socket.getsockname()[1]}", flush=True)
        s.serve_forever()


if __name__ == "__main__":
    {"client": client, "server": server}[sys.argv[1]](sys.argv[2])
