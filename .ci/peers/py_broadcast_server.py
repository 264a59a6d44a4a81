"""A broadcast server written the way Python websockets' docs show it: a set
of connections, and every message a client sends goes to all of them with
websockets.broadcast(). benches/fanout.rs measures it beside ours.

    python py_broadcast_server.py     # prints "listening on 127.0.0.1:PORT"

Runs until its stdin closes (the bench holds it open).
"""

import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

CONNECTIONS = set()


async def handler(websocket):
    CONNECTIONS.add(websocket)
    try:
        async for message in websocket:
            broadcast(CONNECTIONS, message)
    finally:
        CONNECTIONS.discard(websocket)


async def main():
    # No keepalive pings and no compression: the bench's clients neither
    # answer pings nor negotiate permessage-deflate, and neither does the
    # Rust side.
    async with serve(
        handler, "127.0.0.1", 0, ping_interval=None, compression=None, backlog=1024
    ) as server:
        host, port = server.sockets[0].getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
