"""An OTLP/HTTP receiver that accepts and discards trace exports, for benches/run.sh.

Prints "Serving HTTP on http://127.0.0.1:PORT/" once listening; GET /stats answers
"exports bytes" received so far. Python's standard library only.
"""
import http.server
import threading

stats = {"exports": 0, "bytes": 0}
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        with lock:
            stats["exports"] += 1
            stats["bytes"] += length
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            body = f"{stats['exports']} {stats['bytes']}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(f"Serving HTTP on http://127.0.0.1:{server.server_port}/", flush=True)
server.serve_forever()
