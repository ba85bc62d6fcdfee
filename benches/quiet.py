"""How a server answers after a pause: one connection, one GET at a time, with no pause
and with pauses of 1, 5 and 60 ms before each request (200 requests per row).

    python3 benches/quiet.py URL [PID]
    PAUSES="1500" REQUESTS=20 python3 benches/quiet.py URL [PID]   # other pauses (ms)

Prints the median and p90 latency per pause; given the server's PID (Linux), also the
CPU time its threads spent per request (from each thread's schedstat), by thread name.
Start the server yourself, e.g. `tessera up -f benches/hello/spin.toml --listen
127.0.0.1:0` or `target/release/examples/native_hello`.
"""

import os
import socket
import sys
import time
from urllib.parse import urlsplit

REQUESTS = int(os.environ.get("REQUESTS", "200"))
PAUSES_MS = [int(p) for p in os.environ.get("PAUSES", "0 1 5 60").split()]


def thread_cpu_ns(pid):
    """CPU nanoseconds run so far, summed per thread name."""
    totals = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ran = int(f.read().split()[0])
        except OSError:
            continue  # the thread ended meanwhile
        totals[name] = totals.get(name, 0) + ran
    return totals


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url = urlsplit(sys.argv[1])
    pid = sys.argv[2] if len(sys.argv) > 2 else None
    path = url.path or "/"
    conn = socket.create_connection((url.hostname, url.port or 80))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()

    def one():
        started = time.perf_counter()
        conn.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                sys.exit("the server closed the connection")
            head += chunk
        return (time.perf_counter() - started) * 1e6

    for pause in PAUSES_MS:
        before = thread_cpu_ns(pid) if pid else {}
        latencies = []
        for _ in range(REQUESTS):
            if pause:
                time.sleep(pause / 1000)
            latencies.append(one())
        latencies.sort()
        line = (
            f"pause {pause:>2} ms: p50 {latencies[REQUESTS // 2]:.0f} µs, "
            f"p90 {latencies[REQUESTS * 9 // 10]:.0f} µs"
        )
        if pid:
            after = thread_cpu_ns(pid)
            spent = ", ".join(
                f"{name} {(ran - before.get(name, 0)) / REQUESTS / 1000:.0f}"
                for name, ran in sorted(after.items())
                if ran - before.get(name, 0) > 0
            )
            line += f"; CPU µs per request: {spent}"
        print(line)


if __name__ == "__main__":
    main()
