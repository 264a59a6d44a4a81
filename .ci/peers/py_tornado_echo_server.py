"""Python `tornado` WebSocketHandler echo server, for our client to talk to.

usage: py_tornado_echo_server.py

Listens on 127.0.0.1 on a port the OS picks and prints `PORT <n>` on stdout
once it accepts connections. Echoes text as text and binary as binary, and
answers pings (tornado does that itself). Exits when stdin reaches EOF, so it
never outlives the test that started it."""

import asyncio
import os
import sys
import threading

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


def exit_on_stdin_eof():
    sys.stdin.read()
    os._exit(0)


async def main():
    app = tornado.web.Application(
        [(r"/.*", Echo)], websocket_max_message_size=16 << 20
    )
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    asyncio.run(main())
