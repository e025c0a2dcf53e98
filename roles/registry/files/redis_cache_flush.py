# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Forget the registry's blob descriptors in its shared Redis cache, after a garbage collection.

distribution caches "this blob exists, with this size and type" in Redis (keys blobs::<digest>,
repository::<name>::blobs and repository::<name>::blobs::<digest>) and answers a blob's HEAD from
there without asking the storage. After a collection deleted blobs, those entries would say a
deleted blob is still there; the in-memory cache is emptied by the registry's restart, Redis is
not. Only those key patterns are deleted, so a Redis db shared with something else keeps the rest.

Run on a registry node with python3 (standard library only, RESP over TCP):
REDIS_ADDR=host:port [REDIS_DB=0] [REDIS_PASSWORD=...] python3 redis_cache_flush.py
Prints {"deleted": N}; exits 1 with the Redis error when Redis refuses.
"""

import json
import os
import socket
import sys

PATTERNS = ("blobs::*", "repository::*")


class Redis:
    def __init__(self, address, timeout=10):
        host, dummy, port = address.rpartition(":")
        self.sock = socket.create_connection((host or address, int(port or 6379)), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self.reply()

    def reply(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:].rstrip(b"\r\n")
        if kind == b"-":
            raise RuntimeError(rest.decode("utf-8", "replace"))
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest.decode()
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            return [self.reply() for dummy in range(int(rest))]
        raise RuntimeError("unexpected Redis reply %r" % line)


def flush(redis, patterns=PATTERNS):
    """SCAN each pattern and DEL what matches (in batches); the number of keys deleted."""
    deleted = 0
    for pattern in patterns:
        cursor = b"0"
        while True:
            cursor, keys = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            if keys:
                deleted += redis.call("DEL", *keys)
            if cursor == b"0":
                break
    return deleted


def main():
    redis = Redis(os.environ["REDIS_ADDR"])
    try:
        if os.environ.get("REDIS_PASSWORD"):
            redis.call("AUTH", os.environ["REDIS_PASSWORD"])
        redis.call("SELECT", int(os.environ.get("REDIS_DB") or 0))
        print(json.dumps({"deleted": flush(redis)}))
    except (RuntimeError, OSError) as exc:
        print("redis at %s: %s" % (os.environ["REDIS_ADDR"], exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
