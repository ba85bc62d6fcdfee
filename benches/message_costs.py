"""What each consumer's messages cost, from the host's own log: orders placed back to back.

    python3 benches/message_costs.py APP_URL SEED_DIR APP_LOG [ROUNDS]

APP_URL is a running marketplace seeded by `benches/seed.sh APP_URL SEED_DIR …` (its
seller.session and buyer.session are used), APP_LOG the file that `tessera up`'s stderr
goes to. Each round lists a ticket, then orders it as soon as orders knows it (as
`tests/examples/event_propagation.rs` does). Then, per component, the median and p90 of
`micros=` over the messages the rounds caused (every channel), and how many took over
2 ms (a fresh instance of the Python or TypeScript service does); and the same for the
rounds' own requests, by path and status (an order polled before orders knows its
ticket is a 404).
"""

import json
import statistics
import sys
import time
import urllib.error
import urllib.request
import re

app, seed_dir, log = sys.argv[1], sys.argv[2], sys.argv[3]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 200
seller = open(f"{seed_dir}/seller.session").read().strip()
buyer = open(f"{seed_dir}/buyer.session").read().strip()


def post(path, body, session):
    request = urllib.request.Request(
        app + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "cookie": f"session={session}"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, None


with open(log) as f:
    start = sum(1 for _ in f)
took = []
for i in range(rounds):
    began = time.perf_counter()
    status, ticket = post("/api/tickets", {"title": f"Costs {i}", "price": 10}, seller)
    assert status == 201, status
    while post("/api/orders", {"ticketId": ticket["id"]}, buyer)[0] != 201:
        pass
    took.append((time.perf_counter() - began) * 1000)
time.sleep(1)  # the last round's consumers finish
took.sort()
print(f"{rounds} rounds, listed → ordered: p50 {statistics.median(took):.2f} ms, "
      f"p99 {took[max(0, int(rounds * 0.99) - 1)]:.2f} ms")
by_component = {}
by_request = {}
with open(log) as f:
    for line in list(f)[start:]:
        m = re.search(r'component=([\w-]+) outcome="ok" micros=(\d+)', line)
        if m and "tessera::message" in line:
            by_component.setdefault(m.group(1), []).append(int(m.group(2)))
        m = re.search(r'method=(\w+) path=(/api/\w+) component=[\w-]+ status=(\d+) micros=(\d+)', line)
        if m and "tessera::request" in line:
            key = f"{m.group(1)} {m.group(2)} → {m.group(3)}"
            by_request.setdefault(key, []).append(int(m.group(4)))


def table(title, rows, unit):
    print(f"| {title} | {unit} | p50 | p90 | over 2 ms |")
    print("|---|---|---|---|---|")
    for name, micros in sorted(rows.items()):
        micros.sort()
        over = sum(1 for m in micros if m > 2000)
        p90 = micros[int(len(micros) * 0.9)]
        print(f"| {name} | {len(micros)} | {statistics.median(micros):.0f} µs | {p90} µs | {over} |")


table("component", by_component, "messages")
print()
table("request", by_request, "requests")
