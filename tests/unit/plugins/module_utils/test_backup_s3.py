import datetime
import hashlib
import os
import shutil
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_archive as archive
from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_s3 as s3
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import backup_id, host_tag

# The examples of AWS's "Signature Calculations for the Authorization Header" (S3 API reference).
AWS_ACCESS = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC)


def signature(headers):
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def test_sign_get_object_with_range_matches_aws_example():
    headers = s3.sign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        None,
        {"Range": "bytes=0-9"},
        s3.EMPTY_SHA256,
        AWS_ACCESS,
        AWS_SECRET,
        "us-east-1",
        AWS_NOW,
    )
    assert signature(headers) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    assert "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," in headers["Authorization"]
    assert headers["x-amz-date"] == "20130524T000000Z"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"lifecycle": ""}, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ({"max-keys": "2", "prefix": "J"}, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
)
def test_sign_bucket_requests_match_aws_examples(params, expected):
    headers = s3.sign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/",
        params,
        {},
        s3.EMPTY_SHA256,
        AWS_ACCESS,
        AWS_SECRET,
        "us-east-1",
        AWS_NOW,
    )
    assert signature(headers) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, ""),
        ({"uploads": ""}, "uploads="),
        ({"prefix": "a b/c", "list-type": "2"}, "list-type=2&prefix=a%20b%2Fc"),
        ({"partNumber": 3, "uploadId": "x~y+z"}, "partNumber=3&uploadId=x~y%2Bz"),
    ],
)
def test_canonical_query(params, expected):
    assert s3.canonical_query(params) == expected


def test_parse_list_with_namespace_and_continuation():
    body = (
        b'<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>"
        b"<Contents><Key>v/a.manifest.json</Key><Size>12</Size></Contents>"
        b"<Contents><Key>v/a.tar.zst</Key><Size>3456</Size></Contents></ListBucketResult>"
    )
    assert s3.parse_list(body) == ({"v/a.manifest.json": 12, "v/a.tar.zst": 3456}, "tok")
    assert s3.parse_list(b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>") == ({}, None)
    with pytest.raises(ValueError):
        s3.parse_list(b"not xml")


def test_parse_uploads_and_error_detail():
    body = (
        b'<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Upload><Key>v/x.tar.zst</Key><UploadId>u1</UploadId></Upload></ListMultipartUploadsResult>"
    )
    assert s3.parse_uploads(body) == [("v/x.tar.zst", "u1")]
    error = b"<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>"
    assert s3.error_detail(error) == "AccessDenied: Access Denied."
    assert s3.error_detail(b"") == "no detail"


def test_complete_body_and_part_sizes():
    assert s3.complete_body(['"e1"', '"e2"']) == (
        b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"e1"</ETag></Part>'
        b'<Part><PartNumber>2</PartNumber><ETag>"e2"</ETag></Part></CompleteMultipartUpload>'
    )
    assert s3.part_size(1) == s3.part_size(1000) == 16 << 20
    assert s3.part_size(1001) == 32 << 20
    assert s3.part_size(2001, base=5) == 20


# --------------------------------------------------------------------------- an in-memory S3
class FakeResponse:
    def __init__(self, status, content=b"", headers=None):
        self.status_code = status
        self.content = content
        self.headers = headers or {}
        self.raw = self

    def read(self, size=None, decode_content=False):
        data, self.content = (self.content, b"") if size is None else (self.content[:size], self.content[size:])
        return data

    def close(self):
        pass


class FakeS3:
    """Enough of S3 for the store: objects, multipart uploads, listings; every request must be signed."""

    def __init__(self, fail_part=None):
        self.objects, self.uploads, self.fail_part, self.requests = {}, {}, fail_part, []
        self.next_upload = 0

    def request(self, method, url, params=None, data=None, headers=None, timeout=None, stream=False):
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AK/")
        assert "secret" not in str(headers)
        query = {k: v[0] for k, v in parse_qs(params or "", keep_blank_values=True).items()}
        path = unquote(urlsplit(url).path).split("/", 2)
        key = path[2] if len(path) > 2 else ""
        self.requests.append((method, key, query))
        if not key and "list-type" in query:
            items = "".join(
                "<Contents><Key>%s</Key><Size>%d</Size></Contents>" % (k, len(v))
                for k, v in sorted(self.objects.items())
                if k.startswith(query["prefix"])
            )
            return FakeResponse(200, ("<R><IsTruncated>false</IsTruncated>%s</R>" % items).encode())
        if not key and "uploads" in query:
            items = "".join(
                "<Upload><Key>%s</Key><UploadId>%s</UploadId></Upload>" % (u["key"], i) for i, u in self.uploads.items()
            )
            return FakeResponse(200, ("<R>%s</R>" % items).encode())
        if not key:
            return FakeResponse(200)
        if method == "POST" and "uploads" in query:
            self.next_upload += 1
            upload = "up%d" % self.next_upload
            self.uploads[upload] = {"key": key, "parts": {}}
            return FakeResponse(200, ("<R><UploadId>%s</UploadId></R>" % upload).encode())
        if method == "PUT" and "partNumber" in query:
            number = int(query["partNumber"])
            if number == self.fail_part:
                return FakeResponse(507, b"<Error><Code>InsufficientStorage</Code><Message>full</Message></Error>")
            self.uploads[query["uploadId"]]["parts"][number] = bytes(data or b"")
            return FakeResponse(200, headers={"ETag": '"p%d"' % number})
        if method == "POST" and "uploadId" in query:
            parts = self.uploads.pop(query["uploadId"])["parts"]
            self.objects[key] = b"".join(parts[n] for n in sorted(parts))
            return FakeResponse(200)
        if method == "DELETE" and "uploadId" in query:
            self.uploads.pop(query["uploadId"], None)
            return FakeResponse(204)
        if method == "PUT":
            self.objects[key] = bytes(data or b"")
            return FakeResponse(200)
        if method in ("GET", "HEAD"):
            if key not in self.objects:
                return FakeResponse(404, b"<Error><Code>NoSuchKey</Code></Error>")
            body = self.objects[key] if method == "GET" else b""
            return FakeResponse(200, body, {"Content-Length": str(len(self.objects[key]))})
        if method == "DELETE":
            self.objects.pop(key, None)
            return FakeResponse(204)
        raise AssertionError("unexpected request %s %s %s" % (method, key, query))


SPEC = {"endpoint": "http://s3.test:8333", "bucket": "bk", "access_key": "AK", "secret_key": "secret", "prefix": "h1/"}


def make_store(fake):
    client = s3.S3Client(SPEC["endpoint"], "bk", "AK", "secret", session=fake)
    return s3.S3Store(SPEC, "vol", client=client)


@pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd binary is needed")
def test_store_round_trip_through_multipart_upload(tmp_path, monkeypatch):
    monkeypatch.setattr(s3, "PART_SIZE", 64 << 10)  # several parts from a small tree
    source = tmp_path / "src"
    source.mkdir()
    (source / "random.bin").write_bytes(os.urandom(300 << 10))
    (source / "text").write_text("hello\n" * 1000)
    fake = FakeS3()
    store = make_store(fake)
    store.ensure()
    new_id = backup_id(datetime.datetime.now(datetime.UTC), "host1")
    name = new_id + ".tar.zst"
    with store.writer(new_id, name) as out:
        entries, stats = archive.write_archive(str(source), out, archive.compress_argv("none", 0))
    assert fake.objects["h1/vol/" + name] and not fake.uploads
    assert len([r for r in fake.requests if "partNumber" in r[2]]) == -(-stats["bytes_out"] // (64 << 10))
    manifest = {
        "id": new_id,
        "entries": entries,
        "compression": "none",
        "archive": {"name": name, "size": stats["bytes_out"], "sha256": stats["sha256"]},
    }
    store.write_manifest(manifest)
    assert store.ids() == [new_id]
    assert store.latest_good() == (new_id, manifest)
    assert store.archive_ref(manifest) == "s3://bk/h1/vol/" + name
    assert hashlib.sha256(fake.objects["h1/vol/" + name]).hexdigest() == stats["sha256"]
    target = tmp_path / "dst"
    target.mkdir()
    result = archive.read_archive(lambda: store.open_archive(manifest), [], manifest, extract_root=str(target))
    assert result["entries"] == len(entries)
    assert (target / "random.bin").read_bytes() == (source / "random.bin").read_bytes()
    store.record_verification(new_id, False, "full", {"path": "text", "reason": "x"})
    assert not store.is_good(new_id)
    assert store.latest_good() == (None, None)
    store.remove(new_id)
    assert fake.objects == {}


def test_failed_upload_is_aborted_and_leaves_nothing(monkeypatch):
    monkeypatch.setattr(s3, "PART_SIZE", 1000)
    fake = FakeS3(fail_part=2)
    store = make_store(fake)
    expected = r"upload part s3://bk/h1/vol/x.tar failed: HTTP 507 InsufficientStorage"
    with pytest.raises(s3.S3Error, match=expected), store.writer("x", "x.tar") as out:
        for dummy in range(10):
            out.write(b"a" * 1000)
    assert fake.objects == {}
    assert fake.uploads == {}


def test_leftover_uploads_of_this_host_only():
    fake = FakeS3()
    mine = backup_id(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "host1")
    other = backup_id(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "host2")
    fake.uploads = {"u1": {"key": "h1/vol/%s.tar.zst" % mine, "parts": {}}, "u2": {"key": "h1/vol/%s.tar" % other}}
    store = make_store(fake)
    partials = store.leftover_partials(host_tag("host1"))
    assert partials == ["h1/vol/%s.tar.zst?uploadId=u1" % mine]
    store.remove_partials(partials)
    assert list(fake.uploads) == ["u2"]


def test_errors_never_show_the_keys():
    fake = FakeS3()
    store = make_store(fake)
    with pytest.raises(s3.S3Error) as caught:
        store.client.size("h1/vol/missing")
    assert "secret" not in str(caught.value)
    assert "AK" not in str(caught.value)


@pytest.mark.parametrize(
    ("local", "remote", "uploads", "deletes"),
    [
        ({}, {}, [], []),
        (
            {"a.manifest.json": 5, "a.tar.zst": 100, "a.verify.json": 9},
            {},
            ["a.tar.zst", "a.verify.json", "a.manifest.json"],
            [],
        ),
        (  # unchanged archive and manifest stay; the verification record is always refreshed
            {"a.manifest.json": 5, "a.tar.zst": 100, "a.verify.json": 9},
            {"a.manifest.json": 5, "a.tar.zst": 100, "a.verify.json": 9},
            ["a.verify.json"],
            [],
        ),
        (  # a pruned backup goes, manifest first; a half-copied archive is sent again
            {"b.manifest.json": 5, "b.tar.zst": 100},
            {"a.manifest.json": 5, "a.tar.zst": 100, "b.tar.zst": 50},
            ["b.tar.zst", "b.manifest.json"],
            ["a.manifest.json", "a.tar.zst"],
        ),
    ],
)
def test_sync_plan(local, remote, uploads, deletes):
    assert s3.sync_plan(local, remote) == (uploads, deletes)


def test_sync_directory_mirrors_and_skips_hidden_files(tmp_path, monkeypatch):
    monkeypatch.setattr(s3, "PART_SIZE", 1000)
    (tmp_path / "a.tar.zst").write_bytes(b"z" * 2500)
    (tmp_path / "a.manifest.json").write_text("{}")
    (tmp_path / ".lock").write_text("me")
    (tmp_path / ".b.partial").write_text("half")
    fake = FakeS3()
    fake.objects = {"off/vol/old.manifest.json": b"{}", "off/vol/old.tar.zst": b"x", "other/keep": b"k"}
    client = s3.S3Client(SPEC["endpoint"], "bk", "AK", "secret", session=fake)
    done = s3.sync_directory(client, str(tmp_path), "off/vol/")
    assert done == {"uploaded": ["a.tar.zst", "a.manifest.json"], "deleted": ["old.manifest.json", "old.tar.zst"]}
    assert fake.objects == {"off/vol/a.tar.zst": b"z" * 2500, "off/vol/a.manifest.json": b"{}", "other/keep": b"k"}
    assert s3.sync_directory(client, str(tmp_path), "off/vol/") == {"uploaded": [], "deleted": []}
