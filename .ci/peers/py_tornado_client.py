"""Python `tornado` (websocket_connect) as a client of our server.

usage: py_tornado_client.py ws://HOST:PORT/ SIZES

Same checks as py_websocket_client.py: echoes of text and binary messages of
each size, a ping answered by a pong, close 1000 answered by close 1000."""

import asyncio
import sys

from tornado.websocket import websocket_connect

from peer_payloads import describe, messages


def fail(why):
    print(f"py_tornado_client: {why}", file=sys.stderr)
    sys.exit(1)


async def main():
    url, size_arg = sys.argv[1], sys.argv[2]
    conn = await asyncio.wait_for(websocket_connect(url, max_message_size=16 << 20), 30)
    for kind, payload in messages(size_arg):
        await conn.write_message(payload, binary=(kind == "binary"))
        echo = await asyncio.wait_for(conn.read_message(), 30)
        expected_type = str if kind == "text" else bytes
        if not isinstance(echo, expected_type):
            fail(f"{describe(kind, payload)}: echo is {type(echo).__name__}")
        if echo != payload:
            fail(f"{describe(kind, payload)}: echo differs ({len(echo)} long)")

    pong = asyncio.get_running_loop().create_future()
    # Tornado calls the connection's on_pong for each pong frame.
    conn.on_pong = lambda data: pong.done() or pong.set_result(data)
    conn.ping(b"are you there?")
    data = await asyncio.wait_for(pong, 10)
    if data != b"are you there?":
        fail(f"ping: pong carried {data!r}")

    conn.close(1000, "done")
    # read_message resolves to None once the connection is closed.
    while await asyncio.wait_for(conn.read_message(), 10) is not None:
        pass
    if conn.close_code != 1000:
        fail(f"close: the server answered with code {conn.close_code}")
    print("py_tornado_client: ok")


if __name__ == "__main__":
    asyncio.run(main())
