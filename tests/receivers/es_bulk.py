"""Test receivers for the logging role: an Elasticsearch `_bulk` endpoint and a TCP JSON-lines input.

Elasticsearch and Logstash cannot be installed on the test machine, so the tests ship to this process.
It speaks the parts of the real wire protocols the shippers use, and behaves like Elasticsearch 8 where
that matters (an action line carrying `_type` is rejected, as ES 8 does):

  POST /_bulk, POST /<index>/_bulk   NDJSON action+source pairs; answers {"took", "errors", "items": [...]}
                                     with one result per action (201 created / 200 updated for a known _id)
  GET /                              cluster info (version 8.x)
  TCP JSON lines (Logstash `tcp` input, `json_lines` codec): one JSON document per line

Every accepted document is recorded. A separate control port (never part of an outage) answers:

  GET  /_dockyard/check?run=R&count=N[&channel=tcp]   which of the sequence numbers 0..N-1 of run R arrived: received,
                                        missing (first ones), duplicates (extra deliveries), distinct _ids,
                                        when the first document came and the last new number (first_at,
                                        last_new_at: epoch seconds); channel es (default) or tcp
  GET  /_dockyard/events?run=R[&channel=tcp]   the recorded documents of run R (JSON list)
  GET  /_dockyard/stats                 counters, documents per index
  POST /_dockyard/pushback?mode=M       M = off | request (HTTP 429 for the whole bulk) | items (per-item 429)
  POST /_dockyard/outage?seconds=S      close the data listeners (ES and TCP) for S seconds, then reopen
  POST /_dockyard/reset                 forget everything recorded

A document belongs to run R and has sequence number N when its JSON text contains `run=R seq=N`
(the test containers write lines like that). Use --daemon to fork into the background (pid file).
With --pidfile, a receiver that an earlier run left there is stopped first (one receiver per pid
file, whoever starts it: make demo, a test, the bench); --stop only stops it.

Run: es_bulk.py --address 172.29.85.1 --es-port 9200 --tcp-port 5044 --control-port 9299
Stop: es_bulk.py --stop --pidfile .fleet/es-receiver.pid
Stop any on an address (make fleet-down: another checkout's receiver on the same gateway):
      es_bulk.py --stop-on 172.29.85.1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import ipaddress
import itertools
import json
import operator
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

try:  # orjson (requirements-dev.txt) parses a bulk's documents in about a third of json's time
    import orjson

    loads = orjson.loads
except ImportError:  # started by another Python than the project's .venv: the same answers, slower
    loads = json.loads

SEQ_BYTES = re.compile(rb"run=([A-Za-z0-9_.-]+) seq=(\d+)")
BULK_ACTIONS_WITH_SOURCE = ("index", "create", "update")
# The action line a shipper sends for each document: {"index":{"_index":"...","_id":"..."}} ("create" too,
# blanks between tokens allowed). Names in printable ASCII without quote or backslash (the index without
# capitals) are their own JSON text, so the answer can be written from the request's bytes. Any other
# action line (no _id, _type, escapes, a capital in the index, ...) takes the item-by-item path.
_INDEX_NAME = r"[\x20\x21\x23-\x40\x5b\x5d-\x7e]+"  # printable ASCII but '"', '\\' and A-Z
_ID_TEXT = r"[\x20\x21\x23-\x5b\x5d-\x7e]+"  # printable ASCII but '"' and '\\'
USUAL_ACTION = re.compile(
    r'^\{[ \t]*"(index|create)"[ \t]*:[ \t]*\{[ \t]*"_index"[ \t]*:[ \t]*"(%s)"[ \t]*,[ \t]*"_id"[ \t]*:[ \t]*"(%s)"'
    r"[ \t]*\}[ \t]*\}$" % (_INDEX_NAME, _ID_TEXT),
    re.MULTILINE,
)
FIRST, SECOND, THIRD = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)
GROUPS = operator.methodcaller("groups")


class Store:
    """Everything received, thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.seqs = collections.defaultdict(collections.Counter)  # run -> Counter(seq)
            self.deliveries = collections.Counter()  # run -> documents with a sequence number, repeats included
            self.max_seq = {}  # run -> highest sequence number seen
            self.first_at = {}  # run -> wall-clock time of its first document
            self.last_new_at = {}  # run -> wall-clock time of the last request that brought a number not seen before
            self.all_below = {}  # run -> a number below which every number has arrived (check() moves it up)
            self.docs = collections.defaultdict(list)  # run -> [JSON text of a document] (decoded when asked)
            self.ids = collections.defaultdict(set)  # run -> {_id}
            self.counters = collections.Counter()
            self.indices = collections.Counter()  # Elasticsearch index -> documents

    def record(self, texts, ids, indices, channel="es"):
        """The documents one request (a bulk, or a TCP line) brought, under one lock acquisition: texts
        (each document's JSON text as received, bytes), ids ((index, _id) or None each) and indices (the
        index of each; none for TCP). This is most of the receiver's CPU, so a request whose documents
        all belong to one run (the usual bulk) is counted with C-level calls over all of them (map() of the
        number's regex search, Counter.update, list.extend, set.update), not a Python statement per
        document."""
        matches = list(map(SEQ_BYTES.search, texts))
        pairs = list(map(GROUPS, matches)) if None not in matches else ()
        names = set(map(FIRST, pairs))
        if len(names) == 1:  # every document has a number, all of one run
            by_run = {names.pop(): (list(map(int, map(SECOND, pairs))), texts, ids)}
        else:
            by_run = self._by_run(texts, ids, matches)
        numbered = sum(len(seqs) for seqs, dummy_texts, dummy_ids in by_run.values())
        now = time.time()
        with self.lock:
            for name, (seqs, run_texts, run_ids) in by_run.items():
                self._add_run((channel, name.decode()), seqs, run_texts, run_ids, now)
            if len(texts) > numbered:
                self.counters[channel + "_without_seq"] += len(texts) - numbered
            self.counters[channel + "_documents"] += len(texts)
            self.indices.update(indices)

    @staticmethod
    def _by_run(texts, ids, matches):
        """{run name: (numbers, texts, ids)} of the documents that carry a number, one by one."""
        by_run = collections.defaultdict(lambda: ([], [], []))
        for text, doc_id, match in zip(texts, ids, matches, strict=True):
            if match is not None:
                seqs, run_texts, run_ids = by_run[match.group(1)]
                seqs.append(int(match.group(2)))
                run_texts.append(text)
                run_ids.append(doc_id)
        return by_run

    def _add_run(self, run, seqs, texts, ids, now):
        """Count the numbers of one run and keep its documents (the first 200,000) and _ids; under the lock."""
        seen = self.seqs[run]
        distinct_before = len(seen)
        seen.update(seqs)
        self.first_at.setdefault(run, now)
        if len(seen) > distinct_before:
            self.last_new_at[run] = now
        self.deliveries[run] += len(seqs)
        highest = max(seqs)
        if highest > self.max_seq.get(run, -1):
            self.max_seq[run] = highest
        docs = self.docs[run]
        room = 200000 - len(docs)
        if room > 0:
            docs.extend(texts[:room])
        self.ids[run].update(filter(None, ids))

    def check(self, channel, run, count):
        """Which of the sequence numbers 0..count-1 of a run arrived. Cheap enough to poll during a
        1,000,000-line benchmark: counts come from what record() keeps, only the first 50 missing
        numbers are searched for (the whole range only once few are left)."""
        run = (channel, run)
        with self.lock:
            seen = self.seqs.get(run, collections.Counter())
            unexpected = sum(1 for n in seen if n >= count) if self.max_seq.get(run, -1) >= count else 0
            received = len(seen) - unexpected
            missing = []
            if received < count:
                # numbers below `low` all arrived already (numbers only ever arrive): each poll goes on from
                # there instead of walking the whole range from 0 again
                low = self.all_below.get(run, 0)
                while low < count and low in seen:
                    low += 1
                self.all_below[run] = low
                missing = list(itertools.islice((n for n in range(low, count) if n not in seen), 50))
            deliveries = self.deliveries.get(run, 0)
            return {
                "channel": run[0],
                "run": run[1],
                "expected": count,
                "received": received,
                "missing_count": count - received,
                "missing": missing,
                "duplicates": deliveries - len(seen),
                "deliveries": deliveries,
                "unexpected": unexpected,
                "distinct_ids": len(self.ids.get(run, ())),
                "first_at": self.first_at.get(run),
                "last_new_at": self.last_new_at.get(run),
            }


class Settings:
    pushback = "off"


STORE = Store()
SETTINGS = Settings()


def bulk_items(body):
    """(action, meta, source or None, source text or None) from an NDJSON bulk body, as Elasticsearch reads it.

    The usual body (every action has a source line, as shippers send it) is parsed with two json.loads calls
    (all action lines, all source lines, each joined into one JSON array): per-line calls cost about as much
    as the rest of the receiver together. Anything else (a delete, a malformed line) takes the line-by-line
    path, which finds and reports the exact line as Elasticsearch does. Source texts are bytes here.
    """
    lines = body.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the body's final newline
    fast = _bulk_items_fast(lines)  # fails on a blank line too: then the careful path, without them
    if fast is not None:
        return fast
    lines = [line for line in lines if line.strip()]
    fast = _bulk_items_fast(lines)
    if fast is not None:
        return fast
    return list(_bulk_items_by_line(lines))


def _bulk_items_fast(lines, chunk=2048):
    if len(lines) % 2:
        return None
    if len(lines) > chunk:  # a large bulk in parts: joined arrays that stay in the CPU's cache parse faster
        items = []
        for start in range(0, len(lines), chunk):
            part = _bulk_items_fast(lines[start : start + chunk], chunk)
            if part is None:
                return None
            items += part
        return items
    actions, sources = lines[0::2], lines[1::2]
    try:
        metas = loads(b"[" + b",".join(actions) + b"]")
        docs = loads(b"[" + b",".join(sources) + b"]")
    except ValueError:
        return None
    # a line holding more than one value (`{..},{..}`) would shift the arrays: then the careful path decides
    if len(metas) != len(actions) or len(docs) != len(sources):
        return None
    # comprehensions rather than one loop of statements: this runs for every document
    if not all(isinstance(action_line, dict) and len(action_line) == 1 for action_line in metas):
        return None
    pairs = [next(iter(action_line.items())) for action_line in metas]
    if not all(a in BULK_ACTIONS_WITH_SOURCE and isinstance(meta, dict) and "_type" not in meta for a, meta in pairs):
        return None
    return [(action, meta, doc, text) for (action, meta), doc, text in zip(pairs, docs, sources, strict=True)]


def _bulk_items_by_line(lines):
    index = 0
    while index < len(lines):
        try:
            action_line = json.loads(lines[index])
            ((action, meta),) = action_line.items()
        except ValueError as exc:
            raise BulkError(
                "Malformed action/metadata line [%d], expected a simple JSON object: %s" % (index + 1, exc)
            ) from exc
        if action not in ("index", "create", "update", "delete"):
            raise BulkError(
                "Malformed action/metadata line [%d], expected one of [create, delete, index, update] "
                "but found [%s]" % (index + 1, action)
            )
        if "_type" in meta:  # Elasticsearch 8 removed mapping types
            raise BulkError("Action/metadata line [%d] contains an unknown parameter [_type]" % (index + 1))
        if action == "delete":
            yield action, meta, None, None
            index += 1
            continue
        if index + 1 >= len(lines):
            raise BulkError("The bulk request must be terminated by a newline [\\n]")
        try:
            source = json.loads(lines[index + 1])
        except ValueError as exc:
            raise BulkError("failed to parse source of line [%d]: %s" % (index + 2, exc)) from exc
        yield action, meta, source, lines[index + 1]
        index += 2


CREATED_ITEM = (
    '{"%s": {"_index": %s, "_id": %s, "_version": 1, "result": "created", '
    '"_shards": {"total": 1, "successful": 1, "failed": 0}, "status": 201}}'
)
ENCODE_STRING = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str
# The answer to a USUAL_ACTION match (action, index, _id): its names are their own JSON text.
USUAL_CREATED = CREATED_ITEM % ("%s", '"%s"', '"%s"')


class BulkError(Exception):
    pass


def es_error(reason, status=400, kind="illegal_argument_exception"):
    return status, {
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    }


def _usual_bulk(body):
    """The usual bulk, as shippers send it: every pair of lines an action line USUAL_ACTION matches and a
    JSON document. (texts, ids, indices, the answer's items as bytes) from a few C-level calls over the
    whole body, with no Python statement per document; None for any other body (then the item-by-item
    path parses it and answers each item as Elasticsearch would)."""
    lines = body.split(b"\n")
    if len(lines) < 3 or lines.pop() or len(lines) % 2:  # needs the final newline and whole pairs
        return None
    actions = b"\n".join(lines[0::2]).decode("latin-1")  # a byte above 0x7f matches no action line
    found = USUAL_ACTION.findall(actions)  # at most one per line (anchored): all of them match, or not usual
    texts = lines[1::2]
    if len(found) != len(texts):
        return None
    try:  # every document must be JSON, as for Elasticsearch; the values are not needed here
        documents = loads(b"[" + b",".join(texts) + b"]")
    except ValueError:
        return None
    if len(documents) != len(texts):  # a line holding more than one value shifted the array
        return None
    indices = list(map(SECOND, found))
    ids = list(zip(indices, map(THIRD, found), strict=True))
    answer_items = ", ".join([USUAL_CREATED % match for match in found])
    return texts, ids, indices, answer_items.encode()


def handle_bulk(path_index, body):
    if SETTINGS.pushback == "request":
        return es_error("rejected execution of bulk (test receiver push-back)", 429, "es_rejected_execution_exception")
    started = time.monotonic()
    usual = _usual_bulk(body) if SETTINGS.pushback == "off" else None
    if usual is not None:
        texts, ids, indices, answer_items = usual
        STORE.record(texts, ids, indices)
        took = int((time.monotonic() - started) * 1000)
        return 200, b'{"took": %d, "errors": false, "items": [%s]}' % (took, answer_items)
    try:
        parsed = bulk_items(body)
    except BulkError as exc:
        return es_error(str(exc))
    items, errors = [], False
    texts, ids, indices = [], [], []  # of the documents accepted (a delete has none)
    last_target, encoded_target = None, None  # a bulk request mostly names one index: encode it once
    for action, meta, dummy, text in parsed:  # the parsed source is not kept: its text is
        target = meta.get("_index") or path_index
        doc_id = meta.get("_id")
        if not target:
            errors = True
            items.append(
                {
                    action: {
                        "status": 400,
                        "error": {
                            "type": "action_request_validation_exception",
                            "reason": "Validation Failed: 1: index is missing;",
                        },
                    }
                }
            )
            continue
        if SETTINGS.pushback == "items":
            errors = True
            items.append(
                {
                    action: {
                        "_index": target,
                        "status": 429,
                        "error": {
                            "type": "es_rejected_execution_exception",
                            "reason": "rejected execution (test receiver push-back)",
                        },
                    }
                }
            )
            continue
        if target != target.lower():
            errors = True
            items.append(
                {
                    action: {
                        "_index": target,
                        "status": 400,
                        "error": {
                            "type": "invalid_index_name_exception",
                            "reason": "Invalid index name [%s], must be lowercase" % target,
                        },
                    }
                }
            )
            continue
        if text is not None:
            texts.append(text)
            ids.append((target, doc_id) if doc_id else None)
            indices.append(target)
        # the same JSON json.dumps would write for the item, without building and walking a dict per item
        if target != last_target:
            last_target, encoded_target = target, ENCODE_STRING(target)
        items.append(CREATED_ITEM % (action, encoded_target, ENCODE_STRING(str(doc_id or "auto"))))
    STORE.record(texts, ids, indices)
    took = int((time.monotonic() - started) * 1000)
    # reply bytes built from the items' JSON texts (an error item is a dict, encoded as it is)
    item_texts = [item if isinstance(item, str) else json.dumps(item) for item in items]
    answer = '{"took": %d, "errors": %s, "items": [%s]}' % (took, "true" if errors else "false", ", ".join(item_texts))
    return 200, answer.encode()


class ESHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dockyard-es-test-receiver"
    # TCP_NODELAY, as Elasticsearch sets it (http.tcp.no_delay defaults to true): the headers and the body
    # are two writes, and with Nagle the body waited for the client's delayed ACK of the headers (40 ms),
    # which made a shipper's one-document requests (rsyslog replays a failed batch one by one) crawl.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet: thousands of bulk requests
        pass

    def reply(self, status, payload):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-elastic-product", "Elasticsearch")
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path in ("/", ""):
            self.reply(
                200,
                {
                    "name": "dockyard-test",
                    "cluster_name": "dockyard-test",
                    "version": {"number": "8.13.0", "build_flavor": "default"},
                    "tagline": "You Know, for Search",
                },
            )
        else:
            self.reply(*es_error("no handler for GET %s" % self.path, 400))

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.read_body()
        path = urlparse(self.path).path.strip("/").split("/")
        if path[-1] == "_bulk" and len(path) <= 2:
            self.reply(*handle_bulk(path[0] if len(path) == 2 else None, body))
        else:
            self.reply(*es_error("no handler for POST %s" % self.path, 400))

    do_PUT = do_POST  # noqa: N815


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/_dockyard/check":
            self.reply(200, STORE.check(query.get("channel", "es"), query["run"], int(query["count"])))
        elif url.path == "/_dockyard/events":
            with STORE.lock:
                texts = list(STORE.docs.get((query.get("channel", "es"), query["run"]), []))
            self.reply(200, [json.loads(text) for text in texts])
        elif url.path == "/_dockyard/stats":
            with STORE.lock:
                self.reply(
                    200,
                    {
                        "counters": dict(STORE.counters),
                        "indices": dict(STORE.indices),
                        "pushback": SETTINGS.pushback,
                        "data_listening": DATA.listening,
                        "runs": {"%s:%s" % r: sum(c.values()) for r, c in STORE.seqs.items()},
                    },
                )
        else:
            self.reply(404, {"error": "unknown path %s" % url.path})

    def do_POST(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if url.path == "/_dockyard/pushback":
            SETTINGS.pushback = query.get("mode", "off")
            self.reply(200, {"pushback": SETTINGS.pushback})
        elif url.path == "/_dockyard/outage":
            seconds = float(query.get("seconds", "30"))
            DATA.outage(seconds)
            self.reply(200, {"outage_seconds": seconds})
        elif url.path == "/_dockyard/reset":
            STORE.reset()
            gc.collect()
            self.reply(200, {"reset": True})
        else:
            self.reply(404, {"error": "unknown path %s" % url.path})


class JSONLinesHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            line = raw.strip()
            if not line:
                continue
            try:
                loads(line)
            except ValueError:
                STORE.counters["tcp_unparsable"] += 1
                continue
            STORE.record([line], [None], (), channel="tcp")


class TrackedConnections:
    """Remembers open client connections so an outage can cut them, as a dying server would."""

    def __init__(self, *args, **kwargs):
        self.connections = set()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self):
        for request in list(self.connections):
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)


class ThreadingTCP(TrackedConnections, socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TrackedHTTPServer(TrackedConnections, QuietHTTPServer):
    pass


def listen(server_class, address, port, handler):
    """A bound, listening server; an OSError that names the port it could not have."""
    try:
        return server_class((address, port), handler)
    except OSError as exc:
        raise OSError(exc.errno, "port %d: %s" % (port, exc.strerror)) from exc


class DataListeners:
    """The ES and TCP listeners, which an outage closes (open connections are cut) and reopens."""

    def __init__(self, address, es_port, tcp_port):
        self.address, self.es_port, self.tcp_port = address, es_port, tcp_port
        self.servers = []
        self.listening = False
        self.lock = threading.Lock()

    def start(self):
        with self.lock:
            self.servers = []
            if self.es_port:
                self.servers.append(listen(TrackedHTTPServer, self.address, self.es_port, ESHandler))
            if self.tcp_port:
                self.servers.append(listen(ThreadingTCP, self.address, self.tcp_port, JSONLinesHandler))
            for server in self.servers:
                threading.Thread(target=server.serve_forever, daemon=True).start()
            self.listening = True

    def stop(self):
        with self.lock:
            for server in self.servers:
                server.shutdown()
                server.server_close()
                server.cut_connections()
            self.servers = []
            self.listening = False

    def outage(self, seconds):
        def run():
            self.stop()
            time.sleep(seconds)
            self.start()

        threading.Thread(target=run, daemon=True).start()


DATA = None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="address to listen on")
    where.add_argument("--subnet", help="listen on the first address of this subnet (the fleet gateway)")
    where.add_argument("--stop", action="store_true", help="stop the receiver of --pidfile, start none")
    where.add_argument(
        "--stop-on",
        metavar="ADDRESS",
        help="stop every receiver started with --address ADDRESS, whichever checkout started it (and the one of"
        " --pidfile, if given); start none",
    )
    parser.add_argument("--es-port", type=int, default=9200)
    parser.add_argument("--tcp-port", type=int, default=5044, help="TCP JSON lines; 0 disables it")
    parser.add_argument("--control-port", type=int, default=9299)
    parser.add_argument("--daemon", action="store_true", help="fork into the background")
    parser.add_argument("--pidfile", help="write the pid here")
    parser.add_argument("--logfile", default=os.devnull)
    return parser.parse_args(argv)


def receiver_pid(pidfile):
    """The pid in the pid file when that process runs and is one of these receivers, else None."""
    try:
        with open(pidfile, encoding="utf-8") as handle:
            pid = int(handle.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            command = handle.read()
    except (OSError, ValueError):
        return None
    return pid if os.path.basename(__file__).encode() in command else None


def exited(pid):
    """True once the process has let go of its ports: every thread of it gone or a zombie.

    Not "its cmdline is empty", nor "its main thread is a zombie": an exiting process drops its
    memory (and /proc/<pid>/cmdline with it) first, and its main thread can be a zombie while the
    other threads still exit; the files, listening sockets included, close with the last thread.
    A new receiver binding the same ports in that moment failed with EADDRINUSE (2026-12-02: in
    about one run of four).
    """
    try:
        threads = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return True
    for thread in threads:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, thread), encoding="utf-8") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]  # after "pid (comm)": comm may hold spaces
        except (OSError, IndexError):
            continue  # this thread is gone
        if state not in ("Z", "X"):
            return False
    return True


def terminate(pid, timeout=10):
    """SIGTERM, then wait until the process has let go of its ports (exited())."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not exited(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_receiver(pidfile, timeout=10):
    """Stop the receiver the pid file names (if any) and wait until it is gone; remove the file."""
    pid = receiver_pid(pidfile)
    if pid is not None:
        terminate(pid, timeout)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pidfile)
    return pid


def receivers_on(address):
    """Pids of the receivers started with --address ADDRESS, by any checkout (their pid files are per checkout)."""
    name = os.path.basename(__file__)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(os.path.basename(arg) == name for arg in argv):
            continue
        if ("--address", address) in itertools.pairwise(argv) or "--address=" + address in argv:
            pids.append(int(entry))
    return sorted(pids)


def stop_receivers_on(address, timeout=10):
    pids = receivers_on(address)
    for pid in pids:
        terminate(pid, timeout)
    return pids


def main(argv=None):
    global DATA
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.pidfile:
        stopped = stop_receiver(args.pidfile)  # its ports free before this one binds them
        if args.stop:
            print(json.dumps({"stopped": stopped}))
            return 0
    elif args.stop:
        sys.exit("--stop needs --pidfile")
    if args.stop_on:
        print(json.dumps({"stopped": stop_receivers_on(args.stop_on)}))
        return 0
    if args.subnet:
        args.address = str(next(ipaddress.ip_network(args.subnet).hosts()))
    # The daemon tells its parent through a pipe whether it could bind its ports: a port held by
    # another process (a receiver of another checkout on the same gateway) must fail the start,
    # not pass for started because something answers there.
    ready_read, ready_write = os.pipe() if args.daemon else (None, None)
    if args.daemon and os.fork():
        os.close(ready_write)
        with os.fdopen(ready_read, "r", encoding="utf-8") as ready:
            outcome = ready.read().strip() or "the receiver exited before it listened"
        ok = outcome == "listening"  # written once every listener (control port included) is bound
        answer = {"started": ok, "address": args.address, "control": "http://%s:%d" % (args.address, args.control_port)}
        if not ok:
            answer["error"] = outcome
        print(json.dumps(answer))
        return 0 if ok else 1
    if args.daemon:
        os.close(ready_read)
        os.setsid()
        log = open(args.logfile, "a")  # noqa: SIM115 - kept open for the life of the daemon
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
    if args.pidfile:
        with open(args.pidfile, "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
    try:
        DATA = DataListeners(args.address, args.es_port, args.tcp_port)
        DATA.start()
        control = listen(QuietHTTPServer, args.address, args.control_port, ControlHandler)
    except OSError as exc:
        if ready_write is not None:
            os.write(ready_write, ("cannot listen on %s: %s" % (args.address, exc)).encode())
        raise
    if ready_write is not None:
        os.write(ready_write, b"listening")
        os.close(ready_write)
    # No cyclic garbage collector while serving: the documents kept (up to 200,000 per run) and the
    # numbers and _ids seen are long-lived and hold no cycles, and every collection of the oldest
    # generation walked all of them (measured: a third of the receiver's CPU per document at 1,000,000
    # lines). Reference counting frees the rest; /_dockyard/reset collects once.
    gc.disable()
    control.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
