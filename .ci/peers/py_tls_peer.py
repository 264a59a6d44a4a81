"""Interop peer over TLS: Python websockets (sync) with the ssl module.

    python py_tls_peer.py server CERT KEY
        Echo server on 127.0.0.1 (a port the OS picks) over TLS; prints
        `PORT <n>` first, then `CLOSED <code>` for each connection's close
        frame. Exits when stdin reaches EOF.
    python py_tls_peer.py client URL CAFILE
        Connects to a wss:// URL trusting CAFILE, checks the echo of text
        and binary messages of several sizes and a ping, closes with 1000
        and prints `OK`; exits non-zero on any mismatch.
"""
import ssl
import sys
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import serve

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def run_server(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def echo(ws):
        try:
            for message in ws:
                ws.send(message)
        except ConnectionClosed:
            pass
        received = ws.protocol.close_rcvd
        print(f"CLOSED {received.code if received else 'none'}", flush=True)

    with serve(echo, "127.0.0.1", 0, ssl=context, max_size=None, compression=None) as server:
        print(f"PORT {server.socket.getsockname()[1]}", flush=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sys.stdin.read()
        server.shutdown()


def run_client(url, cafile):
    context = ssl.create_default_context(cafile=cafile)
    with connect(url, ssl=context, max_size=None, compression=None) as ws:
        for size in SIZES:
            text = "a" * size
            ws.send(text)
            got = ws.recv()
            assert got == text, f"text {size}: got {len(got)} chars"
            data = bytes(i % 251 for i in range(size))
            ws.send(data)
            got = ws.recv()
            assert got == data, f"binary {size}: got {len(got)} bytes"
        ws.send("héllo wörld ✓")
        assert ws.recv() == "héllo wörld ✓"
        ws.ping(b"tls ping").wait(10)
        ws.close(1000, "done")
    print("OK", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        run_server(sys.argv[2], sys.argv[3])
    else:
        run_client(sys.argv[2], sys.argv[3])
