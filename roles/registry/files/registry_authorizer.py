# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry's authorizer: a Docker token service plus nginx's auth_request endpoint.

GET /token  The Docker token protocol (what `docker login` and `docker pull` ask after a Bearer
            challenge): Basic credentials checked (bcrypt for users, SHA-256 for robot secrets);
            a bad password is 401, no credentials is an anonymous token. The token only names who
            asked (HMAC-signed, short-lived): what they may do is decided on every request.
GET /auth   nginx `auth_request`: the original method and URI (X-Original-Method, X-Original-URI)
            and the client's Bearer token -> 200 allowed, 401 with a challenge (no or anonymous
            token), 403 authenticated but not allowed.

The policy file (users, robots, rules) is re-read when it changes: adding a user or a rule needs
no restart of anything. Standard library only (bcrypt through libcrypt, as in glibc/libxcrypt).
"""

import base64
import ctypes
import ctypes.util
import datetime
import fnmatch
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ACTION_BY_METHOD = {"GET": "pull", "HEAD": "pull", "POST": "push", "PUT": "push", "PATCH": "push", "DELETE": "delete"}
NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>%s(?:/%s)*)/(?:manifests|blobs|tags)/" % (NAME_COMPONENT, NAME_COMPONENT))


def _libcrypt():
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


class PasswordChecker:
    """bcrypt through libcrypt (crypt() is not reentrant: one lock); verified pairs are remembered."""

    def __init__(self):
        self._lib = _libcrypt()
        self._lock = threading.Lock()
        self._good = {}

    def bcrypt_ok(self, password, hashed):
        memo = hashlib.sha256(("%s\0%s" % (hashed, password)).encode()).hexdigest()
        if memo in self._good:
            return True
        with self._lock:
            result = self._lib.crypt(password.encode(), hashed.encode())
        ok = result is not None and hmac.compare_digest(result, hashed.encode())
        if ok:
            if len(self._good) > 10000:
                self._good.clear()
            self._good[memo] = True
        return ok


class Policy:
    """Users, robots and rules from a JSON file, re-read whenever its mtime changes."""

    def __init__(self, path):
        self.path = path
        self._mtime = None
        self._data = {}
        self._lock = threading.Lock()

    def data(self):
        mtime = os.stat(self.path).st_mtime_ns
        with self._lock:
            if mtime != self._mtime:
                with open(self.path, encoding="utf-8") as handle:
                    self._data = json.load(handle)
                self._mtime = mtime
            return self._data

    def allowed(self, subject, repository, action):
        """subject: a user/robot name, or None for anonymous."""
        for rule in self.data().get("rules", []):
            if action not in rule.get("actions", []):
                continue
            if not fnmatch.fnmatchcase(repository, rule["repository"]):
                continue
            users = rule.get("users", [])
            if rule.get("anonymous") or (subject is not None and (subject in users or "*" in users)):
                return True
        return False

    def catalog_allowed(self, subject):
        """The catalog lists every repository: only for who may pull everything (a rule on "*")."""
        return any(
            rule["repository"] == "*"
            and "pull" in rule.get("actions", [])
            and subject is not None
            and (subject in rule.get("users", []) or "*" in rule.get("users", []))
            for rule in self.data().get("rules", [])
        )


class Tokens:
    """Opaque to clients: base64url(JSON {sub, exp}) + "." + base64url(HMAC-SHA256)."""

    def __init__(self, key, ttl):
        self.key = key
        self.ttl = ttl

    def issue(self, subject):
        body = base64.urlsafe_b64encode(json.dumps({"sub": subject, "exp": int(time.time()) + self.ttl}).encode())
        return (body + b"." + base64.urlsafe_b64encode(self._sign(body))).decode()

    def subject(self, token):
        """(valid, subject): subject None for an anonymous token."""
        try:
            body, signature = token.encode().split(b".", 1)
            if not hmac.compare_digest(base64.urlsafe_b64decode(signature), self._sign(body)):
                return False, None
            claims = json.loads(base64.urlsafe_b64decode(body))
        except ValueError:
            return False, None
        if claims.get("exp", 0) < time.time():
            return False, None
        return True, claims.get("sub")

    def _sign(self, body):
        return hmac.new(self.key, body, hashlib.sha256).digest()


def required_access(method, uri):
    """What a request needs: [(repository, action)], "catalog", or "base" (any token)."""
    parts = urlsplit(uri)
    path = parts.path
    if path in ("/v2/", "/v2"):
        return "base"
    if path.startswith("/v2/_catalog"):
        return "catalog"
    match = REPOSITORY_PATH.match(path)
    if not match:
        return [("", "none")]  # nothing the registry serves: refuse
    needs = [(match.group("name"), ACTION_BY_METHOD.get(method, "none"))]
    mount_from = parse_qs(parts.query).get("from")
    if mount_from:  # a cross-repository blob mount reads the other repository
        needs.append((mount_from[0], "pull"))
    return needs


class Handler(BaseHTTPRequestHandler):
    server_version = "dockyard-registry-authorizer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/token":
            self.token()
        elif path == "/auth":
            self.authorize()
        else:
            self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})

    def reply(self, status, body=None, headers=None):
        payload = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def basic_credentials(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            username, password = base64.b64decode(header[6:]).decode().split(":", 1)
        except ValueError:
            return ("", "")
        return username, password

    def credentials_ok(self, username, password):
        data = self.server.policy.data()
        hashed = data.get("users", {}).get(username)
        if hashed:
            return self.server.passwords.bcrypt_ok(password, hashed)
        robot = data.get("robots", {}).get(username)
        if robot:
            return hmac.compare_digest(hashlib.sha256(password.encode()).hexdigest(), robot)
        return False

    def token(self):
        credentials = self.basic_credentials()
        subject = None
        if credentials is not None:
            if not self.credentials_ok(*credentials):
                self.log_message("token refused for %r", credentials[0])
                self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad username or password"}]})
                return
            subject = credentials[0]
        token = self.server.tokens.issue(subject)
        issued = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ttl = self.server.tokens.ttl
        self.reply(200, {"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued})

    def bearer_subject(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return False, None
        return self.server.tokens.subject(header[7:].strip())

    def challenge(self, scope=None):
        realm = self.headers.get("X-Realm", "/token")
        value = 'Bearer realm="%s",service="%s"' % (realm, self.server.service)
        if scope:
            value += ',scope="%s"' % scope
        return {"WWW-Authenticate": value}

    def authorize(self):
        method = self.headers.get("X-Original-Method", "GET")
        needs = required_access(method, self.headers.get("X-Original-URI", "/"))
        valid, subject = self.bearer_subject()
        policy = self.server.policy
        if needs == "base":
            allowed = valid
        elif needs == "catalog":
            allowed = valid and policy.catalog_allowed(subject)
        else:
            allowed = valid and all(policy.allowed(subject, name, action) for name, action in needs)
        if allowed:
            self.reply(200)
        elif valid and subject is not None:
            self.reply(403)
        else:
            scope = None
            if isinstance(needs, list) and needs[0][0]:
                scope = "repository:%s:%s" % (needs[0][0], "pull" if needs[0][1] == "pull" else "pull,push")
            self.reply(401, headers=self.challenge(scope))


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/auth"
    with open(os.path.join(directory, "authorizer.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    with open(os.path.join(directory, "token.key"), "rb") as handle:
        key = handle.read().strip()
    server = ThreadingHTTPServer((config.get("listen", "127.0.0.1"), int(config.get("port", 5001))), Handler)
    # Requests in flight finish before the process exits (server_close joins their threads).
    server.daemon_threads = False
    server.policy = Policy(os.path.join(directory, "policy.json"))
    server.policy.data()  # fail at start on a broken policy, not at the first request
    server.passwords = PasswordChecker()
    server.tokens = Tokens(key, int(config.get("token_ttl", 900)))
    server.service = config.get("service", "dockyard-registry")
    # As the container's PID 1 the process has no default SIGTERM action: without a handler
    # `docker stop` waited its 10 s and killed it (every restart of a node's authorizer, and
    # the unit ended failed with status 137).
    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()


def stop_on_signal(_signum, _frame):
    raise SystemExit(0)


if __name__ == "__main__":
    main()
