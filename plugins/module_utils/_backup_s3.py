# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# A small S3 client (path-style requests signed with AWS Signature Version 4, over
# `requests`, which python3-docker already brings) and the backup store on it:
# <bucket>/<prefix><volume>/<id><suffix>, <id>.manifest.json, <id>.verify.json, the
# same layout as a directory destination. An archive is streamed into a multipart
# upload (parts of 16 MiB, uploaded by a second thread while the next part fills, so
# there is no staging copy) and appears only when the upload is completed; a failed
# backup aborts its upload. Uploads a crashed run left behind are aborted under the
# volume's lock (a host-local lock: hosts sharing a prefix must not back up the same
# volume). Signing and XML parsing are pure functions, unit-tested without a server.
# Access and secret keys never appear in messages or results.

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
import queue
import re
import threading
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlsplit

try:
    import requests

    HAS_REQUESTS = True
except ImportError:  # reported by S3Client when an S3 destination is used
    requests = None
    HAS_REQUESTS = False

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_store import (
    MANIFEST_SUFFIX,
    VERIFY_SUFFIX,
    StoreBase,
    ids_among,
    verification_record,
)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
PART_SIZE = 16 << 20
READ_CHUNK = 1 << 20
LOCK_DIR = "/run/lock/dockyard-volume-backup"
_UNRESERVED = "-_.~"


class S3Error(OSError):
    """An S3 request that failed: the operation, the object, the status and S3's own code/message."""


# --------------------------------------------------------------------------- signing (pure)
def uri_encode(text, keep_slash):
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_query(params):
    """The canonical query string of SigV4: keys and values URI-encoded, sorted by key."""
    pairs = sorted((uri_encode(str(k), False), uri_encode(str(v), False)) for k, v in (params or {}).items())
    return "&".join("%s=%s" % pair for pair in pairs)


def signing_key(secret_key, datestamp, region, service="s3"):
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (datestamp, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign(method, url, params, headers, payload_sha256, access_key, secret_key, region, now):
    """Headers to add for a SigV4-signed request (Authorization, x-amz-date, x-amz-content-sha256).

    `url` is the endpoint plus the already URI-encoded path; `headers` are the other headers that are
    signed (lower-case names). Follows the AWS "Signature Version 4 signing process" for S3.
    """
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    datestamp = amz_date[:8]
    signed = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed.update({"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256})
    names = sorted(signed)
    canonical_request = "\n".join(
        [
            method,
            parts.path or "/",
            canonical_query(params),
            "".join("%s:%s\n" % (name, signed[name]) for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = "%s/%s/s3/aws4_request" % (datestamp, region)
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    signature = hmac.new(
        signing_key(secret_key, datestamp, region), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_sha256,
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
        % (access_key, scope, ";".join(names), signature),
    }


# --------------------------------------------------------------------------- XML (pure)
def _xml(text):
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def error_detail(body):
    """ "Code: Message" of an S3 error document, or the start of the body."""
    root = _xml(body) if body else None
    if root is None:
        return (body or b"").decode("utf-8", "replace").strip()[:200] or "no detail"
    code, message = root.findtext("{*}Code") or root.findtext("Code"), root.findtext("{*}Message")
    message = message or root.findtext("Message")
    return ": ".join(p for p in (code, message) if p) or "no detail"


def parse_list(body):
    """(objects {key: size}, next continuation token or None) of a ListObjectsV2 response."""
    root = _xml(body)
    if root is None:
        raise ValueError("not an XML listing")
    objects = {}
    for item in root.iter():
        if item.tag.rsplit("}", 1)[-1] == "Contents":
            key = item.findtext("{*}Key") or item.findtext("Key")
            size = item.findtext("{*}Size") or item.findtext("Size") or "0"
            objects[key] = int(size)
    truncated = (root.findtext("{*}IsTruncated") or root.findtext("IsTruncated") or "false").lower() == "true"
    token = root.findtext("{*}NextContinuationToken") or root.findtext("NextContinuationToken")
    return objects, token if truncated else None


def parse_uploads(body):
    """[(key, upload id)] of a ListMultipartUploads response."""
    root = _xml(body)
    if root is None:
        return []
    found = []
    for item in root.iter():
        if item.tag.rsplit("}", 1)[-1] == "Upload":
            key = item.findtext("{*}Key") or item.findtext("Key")
            upload = item.findtext("{*}UploadId") or item.findtext("UploadId")
            if key and upload:
                found.append((key, upload))
    return found


def complete_body(etags):
    """The CompleteMultipartUpload document for part ETags (part numbers from 1)."""
    parts = "".join(
        "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (number, etag)
        for number, etag in enumerate(etags, start=1)
    )
    return ("<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % parts).encode("utf-8")


def part_size(number, base=None):
    """Size of part `number` (from 1): doubles every 1000 parts, so 10,000 parts reach far beyond 1 TB."""
    return (base or PART_SIZE) << ((number - 1) // 1000)


# --------------------------------------------------------------------------- client
class S3Client:
    def __init__(self, endpoint, bucket, access_key, secret_key, region="us-east-1", timeout=60, session=None):
        if not HAS_REQUESTS:
            raise S3Error("an S3 destination needs the Python library requests on this host (python3-requests)")
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.timeout = timeout
        self.session = session or requests.Session()

    def url(self, key=""):
        path = "/" + uri_encode(self.bucket, False)
        if key:
            path += "/" + uri_encode(key, True)
        return self.endpoint + path

    def request(self, method, key="", params=None, body=b"", what="", ok=(200,), stream=False, headers=None):
        url = self.url(key)
        payload = body if isinstance(body, (bytes, bytearray, memoryview)) else b""
        extra = dict(headers or {})
        signed = sign(
            method,
            url,
            params,
            extra,
            hashlib.sha256(payload).hexdigest() if payload else EMPTY_SHA256,
            self.access_key,
            self.secret_key,
            self.region,
            datetime.datetime.now(datetime.timezone.utc),
        )
        extra.update(signed)
        try:
            response = self.session.request(
                method,
                url,
                params=canonical_query(params) or None,
                data=bytes(payload) if payload else None,
                headers=extra,
                timeout=self.timeout,
                stream=stream,
            )
        except requests.RequestException as exc:
            raise S3Error("S3 %s s3://%s/%s: %s" % (what or method, self.bucket, key, exc)) from exc
        if response.status_code not in ok:
            detail = error_detail(response.content)
            response.close()
            raise S3Error(
                "S3 %s s3://%s/%s failed: HTTP %d %s" % (what or method, self.bucket, key, response.status_code, detail)
            )
        return response

    def check(self, prefix):
        """One small listing: the endpoint answers, the bucket exists, the keys may list it (errors say why)."""
        self.request("GET", params={"list-type": "2", "max-keys": "1", "prefix": prefix}, what="bucket check").close()

    def list(self, prefix):
        objects, token = {}, None
        while True:
            params = {"list-type": "2", "prefix": prefix}
            if token:
                params["continuation-token"] = token
            response = self.request("GET", params=params, what="list")
            try:
                found, token = parse_list(response.content)
            except ValueError as exc:
                raise S3Error("S3 list s3://%s/%s: %s" % (self.bucket, prefix, exc)) from exc
            objects.update(found)
            if not token:
                return objects

    def get_bytes(self, key, missing_ok=False):
        ok = (200, 404) if missing_ok else (200,)
        response = self.request("GET", key, what="read", ok=ok)
        if response.status_code == 404:
            return None
        return response.content

    def open(self, key):
        """A streaming reader of an object (read(n), close())."""
        return _Body(self.request("GET", key, what="read", stream=True), "s3://%s/%s" % (self.bucket, key))

    def size(self, key):
        response = self.request("HEAD", key, what="size", ok=(200, 404))
        response.close()
        if response.status_code == 404:
            raise S3Error("s3://%s/%s does not exist" % (self.bucket, key))
        return int(response.headers.get("Content-Length", "0"))

    def put(self, key, data, content_type="application/json"):
        self.request("PUT", key, body=data, what="write", headers={"content-type": content_type}).close()

    def delete(self, key):
        self.request("DELETE", key, what="remove", ok=(200, 204, 404)).close()

    def uploads(self, prefix):
        response = self.request("GET", params={"uploads": "", "prefix": prefix}, what="list uploads")
        return parse_uploads(response.content)

    def abort(self, key, upload_id):
        self.request("DELETE", key, params={"uploadId": upload_id}, what="abort upload", ok=(200, 204, 404)).close()

    def multipart(self, key):
        return MultipartWriter(self, key)


class _Body:
    """A streaming object body; transport errors surface as S3Error (an OSError), like a local read's."""

    def __init__(self, response, name):
        self.response = response
        self.name = name

    def read(self, size=-1):
        try:
            return self.response.raw.read(None if size is None or size < 0 else size, decode_content=False)
        except Exception as exc:
            raise S3Error("reading %s broke off: %s" % (self.name, exc)) from exc

    def close(self):
        self.response.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class MultipartWriter:
    """A write-only file object streaming into a multipart upload; commit() completes it, abort() drops it."""

    def __init__(self, client, key):
        self.client = client
        self.key = key
        response = client.request("POST", key, params={"uploads": ""}, what="start upload")
        root = _xml(response.content)
        self.upload_id = (root.findtext("{*}UploadId") or root.findtext("UploadId")) if root is not None else None
        if not self.upload_id:
            raise S3Error("S3 start upload s3://%s/%s: no UploadId in the answer" % (client.bucket, key))
        self.buffer = bytearray()
        self.etags = []
        self.count = 0
        self.parts_sent = 0
        self.error = []
        self.queue = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._upload_parts, daemon=True)
        self.thread.start()

    def _upload_parts(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            number, data = item
            if self.error:
                continue  # drain: a part already failed
            try:
                response = self.client.request(
                    "PUT",
                    self.key,
                    params={"partNumber": number, "uploadId": self.upload_id},
                    body=data,
                    what="upload part",
                )
                response.close()
                self.etags.append(response.headers.get("ETag", ""))
            except S3Error as exc:
                self.error.append(exc)

    def _check(self):
        if self.error:
            raise self.error[0]

    def write(self, data):
        self._check()
        self.buffer += data
        self.count += len(data)
        while len(self.buffer) >= part_size(self.parts_sent + 1):
            size = part_size(self.parts_sent + 1)
            chunk, self.buffer = bytes(self.buffer[:size]), self.buffer[size:]
            self.parts_sent += 1
            self.queue.put((self.parts_sent, chunk))
        return len(data)

    def _finish_parts(self):
        if self.buffer or not self.parts_sent:
            self.parts_sent += 1
            self.queue.put((self.parts_sent, bytes(self.buffer)))
            self.buffer = bytearray()
        self.queue.put(None)
        self.thread.join()
        self._check()
        if len(self.etags) != self.parts_sent:
            raise S3Error(
                "S3 upload s3://%s/%s: %d of %d parts acknowledged"
                % (self.client.bucket, self.key, len(self.etags), self.parts_sent)
            )

    def commit(self):
        self._finish_parts()
        self.client.request(
            "POST",
            self.key,
            params={"uploadId": self.upload_id},
            body=complete_body(self.etags),
            what="complete upload",
        ).close()

    def abort(self):
        if self.thread.is_alive():
            self.error.append(S3Error("aborted"))
            self.queue.put(None)
            self.thread.join()
        with contextlib.suppress(S3Error):
            self.client.abort(self.key, self.upload_id)


# --------------------------------------------------------------------------- store
class S3Store(StoreBase):
    """Backups of one volume under s3://<bucket>/<prefix><volume>/."""

    def __init__(self, spec, volume, client=None):
        self.client = client or S3Client(
            spec["endpoint"], spec["bucket"], spec["access_key"], spec["secret_key"], spec.get("region") or "us-east-1"
        )
        prefix = spec.get("prefix") or ""
        self.prefix = "%s%s/" % (prefix, volume)
        self.location = "s3://%s/%s" % (spec["bucket"], self.prefix.rstrip("/"))
        tag = hashlib.sha256(("%s %s %s" % (spec["endpoint"], spec["bucket"], self.prefix)).encode()).hexdigest()[:16]
        self.lock_path = os.path.join(LOCK_DIR, "%s-%s.lock" % (volume, tag))
        self._objects = None
        self._manifests = {}

    def exists(self):
        return True

    def ensure(self):
        self.client.check(self.prefix)

    def key(self, name):
        return self.prefix + name

    def objects(self, refresh=False):
        if self._objects is None or refresh:
            found = self.client.list(self.prefix)
            self._objects = {
                k[len(self.prefix) :]: size for k, size in found.items() if "/" not in k[len(self.prefix) :]
            }
        return self._objects

    def manifest_ref(self, backup_id):
        return "s3://%s/%s" % (self.client.bucket, self.key(backup_id + MANIFEST_SUFFIX))

    def archive_ref(self, manifest):
        return "s3://%s/%s" % (self.client.bucket, self.key(manifest["archive"]["name"]))

    def ids(self):
        return ids_among(self.objects())

    def _json(self, name):
        data = self.client.get_bytes(self.key(name), missing_ok=True)
        try:
            return json.loads(data) if data else None
        except ValueError:
            return None

    def manifest(self, backup_id):
        if backup_id not in self._manifests:
            self._manifests[backup_id] = self._json(backup_id + MANIFEST_SUFFIX)
        return self._manifests[backup_id]

    def verification(self, backup_id):
        if backup_id + VERIFY_SUFFIX not in self.objects():
            return None
        return self._json(backup_id + VERIFY_SUFFIX)

    def archive_size(self, manifest):
        size = self.objects().get(manifest["archive"]["name"])
        return size if size is not None else self.client.size(self.key(manifest["archive"]["name"]))

    def open_archive(self, manifest):
        return self.client.open(self.key(manifest["archive"]["name"]))

    @contextlib.contextmanager
    def writer(self, backup_id, name):
        upload = self.client.multipart(self.key(name))
        try:
            yield upload
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        self._objects = None

    def write_manifest(self, manifest):
        self.client.put(
            self.key(manifest["id"] + MANIFEST_SUFFIX), json.dumps(manifest, separators=(",", ":")).encode()
        )
        self._manifests[manifest["id"]] = manifest
        self._objects = None

    def record_verification(self, backup_id, ok, mode, detail=None):
        record = verification_record(ok, mode, detail)
        self.client.put(self.key(backup_id + VERIFY_SUFFIX), json.dumps(record).encode())
        self._objects = None
        return record

    def remove(self, backup_id):
        for name in self.backup_names(backup_id):
            self.client.delete(self.key(name))
        self._manifests.pop(backup_id, None)
        self._objects = None

    def leftover_partials(self, host_tag=None):
        """Unfinished uploads of this volume's archives made from this host (ids end with its tag)."""
        found = []
        for key, upload in self.client.uploads(self.prefix):
            name = key[len(self.prefix) :]
            match = re.match(r"^[0-9T.]+Z-([0-9a-f]+)\.", name)
            if host_tag is None or (match and match.group(1) == host_tag):
                found.append("%s?uploadId=%s" % (key, upload))
        return sorted(found)

    def remove_partials(self, partials):
        for item in partials:
            key, upload = item.split("?uploadId=", 1)
            self.client.abort(key, upload)


# --------------------------------------------------------------------------- off-host copies
def _sync_rank(name):
    """Upload order: archives, then verification records, manifests last (a copy is never "good" early)."""
    if name.endswith(MANIFEST_SUFFIX):
        return 2
    if name.endswith(VERIFY_SUFFIX):
        return 1
    return 0


def sync_plan(local, remote):
    """(names to upload, names to delete) mirroring `local` {name: size} onto `remote` {name: size}.

    A file is uploaded when missing or of another size; verification records always (same size, new
    content). Uploads run archives -> records -> manifests; deletions manifests first.
    """
    uploads = sorted(
        (n for n, size in local.items() if remote.get(n) != size or n.endswith(VERIFY_SUFFIX)),
        key=lambda n: (_sync_rank(n), n),
    )
    deletes = sorted((n for n in remote if n not in local), key=lambda n: (-_sync_rank(n), n))
    return uploads, deletes


def sync_directory(client, local_dir, prefix):
    """Mirror a volume's backup directory under `prefix` in the bucket (like rsync --delete-after).

    Hidden files (the lock, partial archives) stay behind. Archives are streamed in a multipart upload.
    Returns {"uploaded": [...], "deleted": [...]}.
    """
    local = {}
    for name in os.listdir(local_dir):
        path = os.path.join(local_dir, name)
        if not name.startswith(".") and os.path.isfile(path):
            local[name] = os.path.getsize(path)
    remote = {k[len(prefix) :]: size for k, size in client.list(prefix).items() if "/" not in k[len(prefix) :]}
    uploads, deletes = sync_plan(local, remote)
    for name in uploads:
        path = os.path.join(local_dir, name)
        if _sync_rank(name) == 0:
            upload = client.multipart(prefix + name)
            try:
                with open(path, "rb") as handle:
                    while True:
                        chunk = handle.read(READ_CHUNK)
                        if not chunk:
                            break
                        upload.write(chunk)
                upload.commit()
            except BaseException:
                upload.abort()
                raise
        else:
            with open(path, "rb") as handle:
                client.put(prefix + name, handle.read())
    for name in deletes:
        client.delete(prefix + name)
    return {"uploaded": uploads, "deleted": deletes}
