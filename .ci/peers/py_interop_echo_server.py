"""Interop peer: Python websockets (sync) echo server for a client under test.

    python py_interop_echo_server.py [--ping-interval SECS]

Listens on 127.0.0.1 on a port the OS picks and prints `PORT <n>` on the
first line of stdout, so the test that started it knows where to connect.
Echoes every message; when a connection ends it prints
`CLOSED <code> <reason>` (the close frame the client sent) on stdout.
With --ping-interval it sends keepalive pings that often and, before the
CLOSED line, prints `PONG_RECEIVED yes|no` (whether any pong came back).
Runs until killed.
"""
import argparse
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


ARGS = None


def echo(ws):
    try:
        for message in ws:
            ws.send(message)
    except ConnectionClosed:
        pass
    if ARGS.ping_interval is not None:
        # latency is measured from keepalive ping to pong; 0.0 until a pong.
        print(f"PONG_RECEIVED {'yes' if ws.latency > 0 else 'no'}", flush=True)
    received = ws.protocol.close_rcvd
    if received is None:
        print("CLOSED none", flush=True)
    else:
        print(f"CLOSED {received.code} {received.reason}", flush=True)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--ping-interval", type=float, default=None)
    ARGS = parser.parse_args()
    keepalive = {}
    if ARGS.ping_interval is not None:
        keepalive = {"ping_interval": ARGS.ping_interval, "ping_timeout": 10}
    with serve(echo, "127.0.0.1", 0, max_size=None, compression=None, **keepalive) as server:
        port = server.socket.getsockname()[1]
        print(f"PORT {port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
