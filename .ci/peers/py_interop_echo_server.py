"""Interop peer: Python websockets (sync) echo server for a client under test.

    python py_interop_echo_server.py

Listens on 127.0.0.1 on a port the OS picks and prints `PORT <n>` on the
first line of stdout, so the test that started it knows where to connect.
Echoes every message; when a connection ends it prints
`CLOSED <code> <reason>` (the close frame the client sent) on stdout.
Runs until killed.
"""
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


def echo(ws):
    try:
        for message in ws:
            ws.send(message)
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    if received is None:
        print("CLOSED none", flush=True)
    else:
        print(f"CLOSED {received.code} {received.reason}", flush=True)


def main():
    with serve(echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        port = server.socket.getsockname()[1]
        print(f"PORT {port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
