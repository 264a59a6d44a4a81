"""Reference Autobahn client driver (Python websockets) for calibrating the gate."""
import sys
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed

base = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001"
agent = sys.argv[2] if len(sys.argv) > 2 else "websockets"
with connect(f"{base}/getCaseCount") as ws:
    count = int(ws.recv())
print(f"{count} cases", file=sys.stderr)
for n in range(1, count + 1):
    try:
        with connect(f"{base}/runCase?case={n}&agent={agent}", max_size=None, compression=None) as ws:
            for msg in ws:
                ws.send(msg)
    except ConnectionClosed:
        pass
    except Exception as e:
        print(f"case {n}: {e!r}", file=sys.stderr)
try:
    with connect(f"{base}/updateReports?agent={agent}", open_timeout=10, close_timeout=1) as ws:
        pass
except Exception as e:
    print(f"updateReports: {e!r}", file=sys.stderr)
