"""Which sequence numbers of a test run arrived: check_seq.py --run R --count N [--channel es|tcp].

Asks the test receiver (es_bulk.py) through its control port, or, when DOCKYARD_ES_URL is set
(e.g. https://user:pass@es.example:9200), a real Elasticsearch: every document of indices
DOCKYARD_ES_INDEX (default logs-*) whose message holds "run=R" is read (scroll API) and the
sequence numbers counted the same way. Prints the check as JSON.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import re
import sys
import urllib.request
from urllib.parse import urlparse

SEQ = re.compile(r"run=([A-Za-z0-9_.-]+) seq=(\d+)")


def http_json(url, body=None, method=None):
    parsed = urlparse(url)
    clean = parsed._replace(netloc=parsed.hostname + (":%d" % parsed.port if parsed.port else "")).geturl()
    request = urllib.request.Request(clean, method=method or ("POST" if body is not None else "GET"))
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    if parsed.username:
        token = base64.b64encode(("%s:%s" % (parsed.username, parsed.password or "")).encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def check_elasticsearch(es_url, index, run, count):
    base = es_url.rstrip("/")
    http_json("%s/%s/_refresh" % (base, index), body={})
    query = {"size": 5000, "query": {"match_phrase": {"message": "run=%s" % run}}, "_source": ["message"]}
    page = http_json("%s/%s/_search?scroll=1m" % (base, index), body=query)
    seen, ids = collections.Counter(), set()
    while page["hits"]["hits"]:
        for hit in page["hits"]["hits"]:
            match = SEQ.search(hit["_source"].get("message", ""))
            if match and match.group(1) == run:
                seen[int(match.group(2))] += 1
                ids.add((hit["_index"], hit["_id"]))
        page = http_json("%s/_search/scroll" % base, body={"scroll": "1m", "scroll_id": page["_scroll_id"]})
    missing = [n for n in range(count) if n not in seen]
    return {
        "channel": "es",
        "run": run,
        "expected": count,
        "received": count - len(missing),
        "missing_count": len(missing),
        "missing": missing[:50],
        # Elasticsearch keeps one document per _id: a line shipped twice overwrote itself.
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "deliveries": sum(seen.values()),
        "unexpected": sum(1 for n in seen if n >= count),
        "distinct_ids": len(ids),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--channel", default="es", choices=["es", "tcp"])
    parser.add_argument("--control", help="control URL of the test receiver, e.g. http://172.29.85.1:9299")
    args = parser.parse_args(argv)
    es_url = os.environ.get("DOCKYARD_ES_URL")
    if es_url and args.channel == "es":
        result = check_elasticsearch(es_url, os.environ.get("DOCKYARD_ES_INDEX", "logs-*"), args.run, args.count)
    else:
        result = http_json(
            "%s/_dockyard/check?run=%s&count=%d&channel=%s" % (args.control, args.run, args.count, args.channel)
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
