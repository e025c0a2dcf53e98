"""A steady HTTP load on one URL, from threads: half keep-alive, half a new connection per request.

Every request is GET <path> and counts as failed when it raises or answers non-200. A keep-alive
worker may retry a request ONCE on a fresh connection, and only when its REUSED connection was
closed by the server before any byte of a response arrived (RFC 9112 section 9.3.1: clients may
retry idempotent requests then; browsers and HTTP libraries do). Such retries are counted apart
in `retried_on_reused_connection`. A new connection that fails is always a failure.
"""

import http.client
import json
import socket
import threading
import time

REQUEST_TIMEOUT = 5.0
MAX_FAILURES_KEPT = 50
# The server closed a reused connection: sending failed, or the stream ended before any byte came.
CLOSED_BEFORE_RESPONSE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def utc_iso(stamp):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + ".%03dZ" % (stamp % 1 * 1000)


class ClosedBeforeResponseError(Exception):
    """A reused keep-alive connection was closed by the server before any response byte arrived."""


class LoadClient:
    """Start, run a phase, stop: `stop()` returns the counts of that run."""

    def __init__(self, host, port, path="/version", rate=80, workers=8, hard_cap_seconds=300):
        self.host, self.port, self.path = host, port, path
        self.interval = workers / rate  # each worker's pace
        self.workers = workers
        self.hard_cap_seconds = hard_cap_seconds
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.started = 0.0
        self.started_wall = 0.0
        self.reset()

    def reset(self):
        names = ("total", "failed", "retried", "keepalive", "new_connection", "keepalive_connections")
        self.counts = dict.fromkeys(names, 0)
        self.failures = []
        self.retries = []
        self.errors = {}
        self.max_latency = 0.0
        self.versions = {}
        self.last_version = None

    # ------------------------------------------------------------------ run
    def start(self):
        self.reset()
        self.stopping.clear()
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.threads = [
            threading.Thread(target=self.worker, args=(index % 2 == 0,), daemon=True) for index in range(self.workers)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping.set()
        seconds = time.monotonic() - self.started  # the window requests were sent in
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT * 2 + 1)  # requests in flight finish (or time out) and count
        return {
            "total_requests": self.counts["total"],
            "failed_requests": self.counts["failed"],
            "retried_on_reused_connection": self.counts["retried"],
            "keepalive_requests": self.counts["keepalive"],
            "new_connection_requests": self.counts["new_connection"],
            "keepalive_connections_opened": self.counts["keepalive_connections"],
            "load_seconds": round(seconds, 2),
            "rate_per_second": round(self.counts["total"] / seconds, 1) if seconds else 0.0,
            "max_latency_seconds": round(self.max_latency, 3),
            "versions_served": dict(self.versions),
            "last_version": self.last_version,
            "errors": dict(self.errors),
            "failures": sorted(self.failures, key=lambda failure: failure["t"]),
            "retries": sorted(self.retries, key=lambda retry: retry["t"]),
        }

    def worker(self, keepalive):
        conn = None
        reused = False
        deadline = self.started + self.hard_cap_seconds
        next_at = time.monotonic()
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if keepalive:
                if conn is None:
                    conn, reused = self.connect(keepalive=True), False
                conn, reused = self.keepalive_request(conn, reused)
            else:
                self.new_connection_request()
            next_at = max(next_at + self.interval, time.monotonic())
            self.stopping.wait(max(0.0, next_at - time.monotonic()))
        if conn is not None:
            conn.close()

    def connect(self, keepalive=False):
        if keepalive:
            with self.lock:
                self.counts["keepalive_connections"] += 1
        return http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)

    def keepalive_request(self, conn, reused):
        """One request on the worker's connection; returns the connection to use next (None: reconnect)."""
        started = time.time()
        try:
            ok, detail, keep = self.get(conn, reused)
        except ClosedBeforeResponseError as exc:
            conn.close()
            conn = self.connect(keepalive=True)
            try:
                ok, detail, keep = self.get(conn, reused=False)
            except Exception as retry_exc:  # any error of the retry is a failure
                ok, detail, keep = False, "retry failed: %r (after %s)" % (retry_exc, exc), False
            with self.lock:
                self.counts["retried"] += 1
                if len(self.retries) < MAX_FAILURES_KEPT:
                    moment = {"at": utc_iso(started), "t": round(started - self.started_wall, 3)}
                    self.retries.append({**moment, "cause": str(exc), "retry_ok": ok})
        except Exception as exc:  # any error is a failed request
            ok, detail, keep = False, repr(exc), False
        self.record("keepalive", ok, detail, started)
        if not keep:
            conn.close()
            return None, False
        return conn, True

    def new_connection_request(self):
        started = time.time()
        conn = self.connect()
        try:
            ok, detail, dummy = self.get(conn, reused=False)
        except Exception as exc:  # any error is a failed request
            ok, detail = False, repr(exc)
        finally:
            conn.close()
        self.record("new_connection", ok, detail, started)

    def get(self, conn, reused):
        """(ok, version or error, connection still usable); ClosedBeforeResponseError only on a reused connection."""
        try:
            conn.request("GET", self.path)
            if reused and not self.response_began(conn):
                raise ClosedBeforeResponseError("reused connection closed by the server before any response byte")
        except CLOSED_BEFORE_RESPONSE as exc:
            if reused:
                raise ClosedBeforeResponseError("reused connection: %r" % exc) from exc
            raise
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return False, "HTTP %d %s" % (response.status, body[:120].decode("utf-8", "replace")), False
        try:
            version = json.loads(body).get("version")
        except ValueError:
            version = "unparsed"
        return True, version, not response.will_close

    @staticmethod
    def response_began(conn):
        """Wait for the first byte of the response without consuming it; False if the server closed first."""
        try:
            return conn.sock.recv(1, socket.MSG_PEEK) != b""
        except (ConnectionResetError, ConnectionAbortedError):
            return False

    def record(self, kind, ok, detail, started):
        with self.lock:
            self.counts["total"] += 1
            self.counts[kind] += 1
            self.max_latency = max(self.max_latency, time.time() - started)
            if ok:
                self.versions[detail] = self.versions.get(detail, 0) + 1
                self.last_version = detail
                return
            self.counts["failed"] += 1
            error = " ".join(detail.split()[:2]) if detail.startswith("HTTP") else detail.split("(")[0]
            self.errors[error] = self.errors.get(error, 0) + 1
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append(
                    {
                        "at": utc_iso(started),
                        "t": round(started - self.started_wall, 3),
                        "worker": kind,
                        "error": detail,
                    }
                )
