"""Python `websocket-client` as a client of our server.

usage: py_websocket_client.py ws://HOST:PORT/ SIZES

Sends text and binary messages of each size (comma separated) and checks the
echoes, pings and checks the pong, closes with 1000 and checks the server's
close reply. Exits 0 on success, 1 with the reason on stderr otherwise."""

import struct
import sys

import websocket

from peer_payloads import describe, messages


def fail(why):
    print(f"py_websocket_client: {why}", file=sys.stderr)
    sys.exit(1)


def main():
    url, size_arg = sys.argv[1], sys.argv[2]
    ws = websocket.create_connection(url, timeout=30)
    for kind, payload in messages(size_arg):
        if kind == "text":
            ws.send(payload)
        else:
            ws.send_binary(payload)
        opcode, data = ws.recv_data()
        if kind == "text":
            if opcode != websocket.ABNF.OPCODE_TEXT:
                fail(f"{describe(kind, payload)}: echo has opcode {opcode}")
            data = data.decode("utf-8")
        elif opcode != websocket.ABNF.OPCODE_BINARY:
            fail(f"{describe(kind, payload)}: echo has opcode {opcode}")
        if data != payload:
            fail(f"{describe(kind, payload)}: echo differs ({len(data)} long)")

    ws.ping(b"are you there?")
    opcode, data = ws.recv_data(control_frame=True)
    if opcode != websocket.ABNF.OPCODE_PONG or data != b"are you there?":
        fail(f"ping: got opcode {opcode} with {data!r}, not the pong")

    ws.close(status=1000, reason=b"done", timeout=10)
    frame = ws.close_frame
    if frame is None:
        fail("close: no close frame came back")
    (code,) = struct.unpack("!H", frame.data[:2])
    if code != 1000:
        fail(f"close: the server answered with code {code}")
    print("py_websocket_client: ok")


if __name__ == "__main__":
    main()
