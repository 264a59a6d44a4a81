"""Reference echo server (Python websockets, asyncio) for calibrating the Autobahn gate."""
import argparse, asyncio
from websockets.asyncio.server import serve

async def echo(ws):
    try:
        async for msg in ws:
            await ws.send(msg)
    except Exception:
        pass

async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:9001")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    async with serve(echo, host, int(port), max_size=None, compression=None):
        await asyncio.Future()

asyncio.run(main())
