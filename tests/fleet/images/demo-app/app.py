"""demo-app: a tiny HTTP service for release tests.

Endpoints:
  /healthz  200 "ok", or 500 when APP_HEALTHY=0 (the broken build)
  /version  JSON: version, revision, hostname
  /config   content of the file named by DEMO_CONFIG_FILE (404 if unset or missing)
  /env      JSON of the environment variables whose names start with DEMO_
  /slow     waits ?seconds=N (at most 30) then answers: an in-flight request
Every request writes one JSON line to stdout. SIGTERM stops accepting new
connections, finishes in-flight requests, then exits 0.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

VERSION = os.environ.get("APP_VERSION", "dev")
REVISION = os.environ.get("APP_REVISION", "unknown")
HEALTHY = os.environ.get("APP_HEALTHY", "1") == "1"
SHUTTING_DOWN = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 5  # idle keep-alive connections close, so shutdown never waits long

    def do_GET(self):
        url = urlparse(self.path)
        route = {
            "/healthz": self.healthz,
            "/version": self.version,
            "/config": self.config,
            "/env": self.env,
            "/slow": self.slow,
        }.get(url.path)
        if route is None:
            self.answer(404, "text/plain", "not found\n")
        else:
            route(parse_qs(url.query))

    def healthz(self, _query):
        if HEALTHY:
            self.answer(200, "text/plain", "ok\n")
        else:
            self.answer(500, "text/plain", "unhealthy: this build is broken on purpose\n")

    def version(self, _query):
        body = {"app": "demo-app", "version": VERSION, "revision": REVISION, "hostname": socket.gethostname()}
        self.answer(200, "application/json", json.dumps(body) + "\n")

    def config(self, _query):
        path = os.environ.get("DEMO_CONFIG_FILE", "")
        try:
            with open(path, encoding="utf-8") as handle:
                self.answer(200, "text/plain", handle.read())
        except OSError:
            self.answer(404, "text/plain", "no config file\n")

    def env(self, _query):
        values = {k: v for k, v in os.environ.items() if k.startswith("DEMO_")}
        self.answer(200, "application/json", json.dumps(values, sort_keys=True) + "\n")

    def slow(self, query):
        seconds = min(float(query.get("seconds", ["1"])[0]), 30.0)
        time.sleep(seconds)
        self.answer(200, "text/plain", "slept %.1fs\n" % seconds)

    def answer(self, status, content_type, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if SHUTTING_DOWN.is_set():
            # Tell keep-alive clients to reconnect elsewhere.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "client": self.client_address[0],
            "request": self.requestline,
            "status": args[1] if len(args) > 1 else None,
            "version": VERSION,
        }
        sys.stdout.write(json.dumps(line) + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins in-flight request threads
    block_on_close = True


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = Server(("0.0.0.0", port), Handler)

    def on_sigterm(_signum, _frame):
        SHUTTING_DOWN.set()
        # shutdown() blocks until serve_forever() returns: call it off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    print(json.dumps({"event": "start", "version": VERSION, "revision": REVISION, "port": port}), flush=True)
    server.serve_forever()
    server.server_close()  # waits for in-flight requests
    print(json.dumps({"event": "stopped", "version": VERSION}), flush=True)


if __name__ == "__main__":
    main()
