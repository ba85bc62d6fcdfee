"""Runs localstripe (a fake Stripe API server) bound to loopback only.

localstripe's own CLI listens on every interface and pickles its state to a shared
/tmp file; this wrapper binds 127.0.0.1 and keeps the state in memory, so parallel test
runs each get a private, empty Stripe.

    .venv/bin/python scripts/run_localstripe.py [PORT]      (default 8420; 0 = any free port)

Prints `localstripe listening on http://127.0.0.1:PORT` once the port is bound.
"""

import socket
import sys

import aiohttp.web
import localstripe.resources
import localstripe.server


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8420
    # In-memory only: no shared pickle file between instances.
    localstripe.resources.Store.dump_to_disk = lambda self: None
    # Bound here, before announcing it, so that port 0 can be used (no race for a port).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"localstripe listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    aiohttp.web.run_app(localstripe.server.app, sock=sock, print=None)


if __name__ == "__main__":
    main()
