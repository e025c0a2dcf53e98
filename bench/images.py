"""make bench B=images: auditing a registry of 500 image tags, and a no-op image pipeline run.

On the test fleet, against the origin registry (origin.dockyard.test:5000, reached from the
controller as https://127.0.0.1:15443 with the fleet's CA):

  generate  straight through the registry HTTP API from the controller (not timed, PUSH_WORKERS
            threads): one tiny layer blob; benchimg/base:1.0 pushed twice (the second push moves
            the tag: a base rebuilt under the same tag); APP_TAGS manifests in benchimg/app, each
            tagged by a fake 40-hex Git SHA with its own image config carrying the labels
            dockyard.fleet.image_build writes (source, revision, kind=app, parent ref
            benchimg/base:1.0, parent digest, lineage depth 2). Every DRIFT_EVERY-th app records
            the old base digest: planted drift the audit has to find, and nothing else.
  audit     bench/images/audit.yml: dockyard.fleet.image_audit on host1 over [benchimg/app,
            benchimg/base] (workers=WORKERS) -> audit_seconds, the ansible-playbook wall time,
            median of AUDIT_ROUNDS runs. Every run must report all APP_TAGS+1 images and exactly
            the planted drift (the same images in findings and in apps_to_rebuild), else the
            bench fails. Next to it: playbook_overhead_seconds (bench/images/ping.yml, the same
            play doing only ansible.builtin.ping, one run paired with each audit run),
            audit_minus_overhead_seconds (median of the paired differences) and
            audit_task_seconds (the audit task alone, timed on the controller by the play).
  pipeline  three Git repositories on host1 (bench/images/prepare.yml: OS base FROM
            debian:bookworm of the origin, middleware FROM benchimg-pipe/bench-base:1.0, app
            FROM benchimg-pipe/bench-mw:2.0), playbooks/image_pipeline.yml run once (builds and
            pushes all three, not timed), then NOOP_ROUNDS runs with nothing to build (each must
            end with changed=0) -> noop_pipeline_seconds, the median wall time.

At the end (finally): every manifest the bench pushed is deleted from the registry (DELETE
/v2/<repo>/manifests/<digest>; the blobs stay until the registry's garbage collection), and
the repositories, checkouts and images on host1 are removed (bench/images/clean_up.yml).
Targets of the issue: the audit of 500 tags under 30 s, the no-op pipeline under 10 s.
"""

import datetime
import gzip
import hashlib
import importlib.metadata
import io
import json
import re
import statistics
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml
from _bench import INVENTORY, REPO, BenchError, changed_count, run_playbook

PLAYS = REPO / "bench/images"
CA_CERT = REPO / ".fleet/ca/ca.crt"
PIPELINE_PLAY = REPO / "playbooks/image_pipeline.yml"
HOST = "host1"
APP_REPO, BASE_REPO, BASE_TAG = "benchimg/app", "benchimg/base", "1.0"
APP_TAGS = 500
DRIFT_EVERY = 10  # every 10th app records the old base digest: 50 planted drifts
PUSH_WORKERS = 16
WORKERS = 16  # image_audit's parallel requests (its default)
AUDIT_ROUNDS = 3
NOOP_ROUNDS = 3
TARGETS = {"audit_seconds": 30.0, "noop_pipeline_seconds": 10.0}
FINDINGS = ("too_deep", "drift", "tag_not_sha", "no_source", "not_current_release")
PIPE_VARS = yaml.safe_load((PLAYS / "vars/main.yml").read_text())
PIPE_REPOS = ["%s/%s" % (PIPE_VARS["bench_images_ns"], name) for name in PIPE_VARS["bench_images_names"]]

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ACCEPT = ", ".join(
    [
        MANIFEST_V2,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
SOURCE = "https://git.example.invalid/bench/%s.git"  # org.opencontainers.image.source
CREATED = "2024-01-01T00:00:00Z"  # fixed: the generated blobs and manifests are the same every run


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def fake_sha(index):
    return hashlib.sha1(("dockyard bench image %d" % index).encode()).hexdigest()


# ---------------------------------------------------------------------- registry
class Registry:
    """The origin registry's HTTP API from the controller, one requests session per thread."""

    def __init__(self, base, name):
        self.base = base
        self.name = name  # origin.dockyard.test:5000, as the hosts and the labels spell it
        self.local = threading.local()

    @property
    def session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def call(self, method, url, ok, **kwargs):
        url = url if url.startswith("http") else self.base + url
        try:
            # verify per request: a session's verify loses to REQUESTS_CA_BUNDLE in the environment
            response = self.session.request(method, url, timeout=60, verify=str(CA_CERT), **kwargs)
        except requests.RequestException as exc:
            raise BenchError("%s %s: %s" % (method, url, exc)) from None
        if response.status_code not in ok:
            raise BenchError("%s %s: HTTP %d %s" % (method, url, response.status_code, response.text[:300]))
        return response

    def put_blob(self, repo, data):
        digest = sha256(data)
        if self.call("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=(200, 404)).status_code == 200:
            return digest
        location = self.call("POST", "/v2/%s/blobs/uploads/" % repo, ok=(202,)).headers["Location"]
        url = "%s%sdigest=%s" % (location, "&" if "?" in location else "?", digest)
        self.call("PUT", url, ok=(201,), data=data, headers={"Content-Type": "application/octet-stream"})
        return digest

    def put_manifest(self, repo, tag, manifest):
        body = canonical(manifest)
        response = self.call(
            "PUT", "/v2/%s/manifests/%s" % (repo, tag), ok=(201,), data=body, headers={"Content-Type": MANIFEST_V2}
        )
        digest = response.headers.get("Docker-Content-Digest")
        if digest != sha256(body):
            raise BenchError("%s:%s pushed as %s, expected %s" % (repo, tag, digest, sha256(body)))
        return digest

    def digest(self, repo, tag):
        response = self.call("HEAD", "/v2/%s/manifests/%s" % (repo, tag), ok=(200, 404), headers={"Accept": ACCEPT})
        return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None

    def labels(self, repo, tag):
        manifest = self.call("GET", "/v2/%s/manifests/%s" % (repo, tag), ok=(200,), headers={"Accept": MANIFEST_V2})
        config = self.call("GET", "/v2/%s/blobs/%s" % (repo, manifest.json()["config"]["digest"]), ok=(200,))
        return config.json().get("config", {}).get("Labels") or {}

    def tags(self, repo):
        response = self.call("GET", "/v2/%s/tags/list?n=10000" % repo, ok=(200, 404))
        return (response.json().get("tags") or []) if response.status_code == 200 else []

    def delete(self, repo, digest):
        self.call("DELETE", "/v2/%s/manifests/%s" % (repo, digest), ok=(202, 404))

    def purge(self, repo, extra_digests=()):
        """Delete every manifest a tag of repo points to, plus extra_digests; how many were deleted."""
        with ThreadPoolExecutor(max_workers=PUSH_WORKERS) as pool:
            digests = set(pool.map(lambda tag: self.digest(repo, tag), self.tags(repo))) - {None}
            digests |= set(extra_digests)
            list(pool.map(lambda digest: self.delete(repo, digest), sorted(digests)))
        return len(digests)


def layer_blob():
    """A gzip'd tar holding one small file: (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        content = b"dockyard.fleet image bench\n"
        info = tarfile.TarInfo("etc/dockyard-bench")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256(tar_bytes)


def image_config(labels, diff_id):
    return canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": {"Cmd": ["/bin/true"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "dockyard.fleet bench/images.py"}],
        }
    )


def manifest_for(config, layer):
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_V2,
        "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": sha256(config)},
        "layers": [{"mediaType": LAYER_GZIP, "size": len(layer[0]), "digest": sha256(layer[0])}],
    }


def push_image(registry, repo, tag, labels, layer):
    config = image_config(labels, layer[1])
    registry.put_blob(repo, config)
    return registry.put_manifest(repo, tag, manifest_for(config, layer))


def labels_for(kind, source, revision, parent_ref, parent_digest, depth):
    return {
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": CREATED,
        "dockyard.image.kind": kind,
        "dockyard.parent.ref": parent_ref,
        "dockyard.parent.digest": parent_digest,
        "dockyard.lineage.depth": str(depth),
        "dockyard.build.inputs": hashlib.sha256(("%s %s" % (revision, parent_digest)).encode()).hexdigest()[:32],
    }


def generate(registry):
    """Push the base twice and APP_TAGS apps; (pushed {repo: [digest]}, expected image names, planted drift)."""
    layer = layer_blob()
    for repo in (BASE_REPO, APP_REPO):
        registry.put_blob(repo, layer[0])
    base_ref = "%s/%s:%s" % (registry.name, BASE_REPO, BASE_TAG)
    # the second push moves the tag: the first digest is the "old base" drifted apps record
    bases = [push_image(registry, BASE_REPO, BASE_TAG, base_labels(registry, n), layer) for n in (1, 2)]
    old_base, base = bases
    if registry.digest(BASE_REPO, BASE_TAG) != base:
        raise BenchError("%s does not point to the second push %s" % (base_ref, base))

    def push_app(index):
        tag = fake_sha(index)
        parent = old_base if index % DRIFT_EVERY == 0 else base
        labels = labels_for("app", SOURCE % "app", tag, base_ref, parent, 2)
        return push_image(registry, APP_REPO, tag, labels, layer)

    with ThreadPoolExecutor(max_workers=PUSH_WORKERS) as pool:
        apps = list(pool.map(push_app, range(APP_TAGS)))
    tags = registry.tags(APP_REPO)
    if len(tags) != APP_TAGS:
        raise BenchError("%s has %d tags after the push, expected %d" % (APP_REPO, len(tags), APP_TAGS))
    expected = {"%s/%s:%s" % (registry.name, APP_REPO, fake_sha(i)) for i in range(APP_TAGS)} | {base_ref}
    planted = sorted(
        "%s/%s:%s" % (registry.name, APP_REPO, fake_sha(i)) for i in range(APP_TAGS) if i % DRIFT_EVERY == 0
    )
    return {BASE_REPO: bases, APP_REPO: apps}, expected, planted


def base_labels(registry, n):
    """The labels of the n-th push of the base (1: the old one, 2: the one the tag points to)."""
    debian_digest = registry.digest("debian", "bookworm")
    if not debian_digest:
        raise BenchError("the origin registry has no debian:bookworm")
    debian_ref = "%s/debian:bookworm" % registry.name
    return labels_for("base", SOURCE % "base", fake_sha(-n), debian_ref, debian_digest, 1)


def generated_base_digests(registry):
    """The digests of the two base pushes (the same every run), for the clean-up before a run."""
    layer = layer_blob()
    return [sha256(canonical(manifest_for(image_config(base_labels(registry, n), layer[1]), layer))) for n in (1, 2)]


def purge_all(registry, pushed):
    """Every manifest of the bench repositories, and the old base (untagged once the tag moved)."""
    base_digests = {*pushed.get(BASE_REPO, ()), *generated_base_digests(registry)}
    deleted = {BASE_REPO: registry.purge(BASE_REPO, base_digests)}
    deleted[APP_REPO] = registry.purge(APP_REPO, pushed.get(APP_REPO, ()))
    for repo in PIPE_REPOS:
        deleted[repo] = registry.purge(repo)
    return deleted


# ---------------------------------------------------------------------- ansible
def audit_report(output):
    """The line audit.yml prints (result format json): its dict."""
    match = re.search(r'^\s*"msg": ("BENCH_AUDIT .*")\s*$', output, re.MULTILINE)
    if not match:
        raise BenchError("audit.yml printed no BENCH_AUDIT line:\n%s" % output[-2000:])
    return json.loads(json.loads(match.group(1))[len("BENCH_AUDIT ") :])


def check_audit(report, expected, planted):
    """The audit saw every generated image and found exactly the planted drift; its finding counts."""
    names = report["image_names"]
    counts = {kind: sum(1 for f in report["findings"] if f["finding"] == kind) for kind in FINDINGS}
    drifted = sorted(f["image"] for f in report["findings"] if f["finding"] == "drift")
    problems = []
    if int(report["images"]) != len(expected) or set(names) != expected:
        missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
        problems.append(
            "audited %s images, expected %d (missing %s, unexpected %s)"
            % (report["images"], len(expected), missing[:5], extra[:5])
        )
    if drifted != planted:
        problems.append(
            "drift on %d images, planted %d (not found %s, unexpected %s)"
            % (
                len(drifted),
                len(planted),
                sorted(set(planted) - set(drifted))[:5],
                sorted(set(drifted) - set(planted))[:5],
            )
        )
    if sorted(report["apps_to_rebuild"]) != planted:
        problems.append(
            "apps_to_rebuild has %d images, planted drift %d" % (len(report["apps_to_rebuild"]), len(planted))
        )
    others = {kind: n for kind, n in counts.items() if kind != "drift" and n}
    if others:
        problems.append(
            "unexpected findings %s: %s" % (others, [f for f in report["findings"] if f["finding"] != "drift"][:5])
        )
    if problems:
        raise BenchError("the audit is wrong: %s" % "; ".join(problems))
    return counts


def measure_audit(expected, planted):
    audit_extra = {"bench_host": HOST, "bench_repositories": [APP_REPO, BASE_REPO], "bench_workers": WORKERS}
    runs, pings, tasks, counts, summary = [], [], [], None, None
    for dummy in range(AUDIT_ROUNDS):
        seconds, output = run_playbook(
            PLAYS / "audit.yml", [audit_extra], env_extra={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
        )
        report = audit_report(output)
        counts = check_audit(report, expected, planted)
        summary = report["summary_head"]
        runs.append(seconds)
        tasks.append(float(report["task_seconds"]))
        pings.append(run_playbook(PLAYS / "ping.yml", [{"bench_host": HOST}])[0])
    return {
        "audit_seconds": round(statistics.median(runs), 2),
        "audit_task_seconds": round(statistics.median(tasks), 2),
        "playbook_overhead_seconds": round(statistics.median(pings), 2),
        "audit_minus_overhead_seconds": round(statistics.median(a - p for a, p in zip(runs, pings, strict=True)), 2),
        "audit_findings": counts,
        "audit_summary": summary,
        "audit_rounds": {"audit": runs, "audit_task": tasks, "ping": pings},
    }


def lineage_depths(registry):
    """dockyard.lineage.depth of each pipeline image, as image_build labelled it."""
    depths = {}
    for repo in PIPE_REPOS:
        tags = [tag for tag in registry.tags(repo) if len(tag) == 40]
        depths[repo] = registry.labels(repo, tags[0]).get("dockyard.lineage.depth") if tags else None
    return depths


def measure_pipeline(registry):
    pipeline_extra = [
        "@%s" % (PLAYS / "vars/main.yml"),
        {
            "image_pipeline": "{{ bench_images_pipeline }}",
            "image_build_host": HOST,
        },
    ]
    run_playbook(PLAYS / "prepare.yml", [{"bench_host": HOST}])
    first, output = run_playbook(PIPELINE_PLAY, pipeline_extra)
    if changed_count(output) == 0:
        raise BenchError("the first pipeline run built nothing:\n%s" % output)
    runs = []
    for dummy in range(NOOP_ROUNDS):
        seconds, output = run_playbook(PIPELINE_PLAY, pipeline_extra)
        if changed_count(output) != 0:
            raise BenchError("a no-op pipeline run changed something:\n%s" % output)
        runs.append(seconds)
    return {
        "noop_pipeline_seconds": round(statistics.median(runs), 2),
        "pipeline_lineage_depths": lineage_depths(registry),
        "pipeline_first_run_seconds": first,
        "noop_pipeline_rounds": runs,
    }


# ---------------------------------------------------------------------- main
def clean_up(registry, pushed):
    deleted = purge_all(registry, pushed)
    run_playbook(PLAYS / "clean_up.yml", [{"bench_host": HOST}])
    return deleted


def left_over(registry):
    repos = (APP_REPO, BASE_REPO, *PIPE_REPOS)
    return ["%s still has tags %s" % (repo, tags[:3]) for repo in repos if (tags := registry.tags(repo))]


def main(out_path):
    inventory = yaml.safe_load(INVENTORY.read_text())["all"]["vars"]
    registry = Registry("https://%s" % inventory["fleet_origin_registry_local"], inventory["fleet_origin_registry"])
    result = {
        "host": HOST,
        "registry": registry.name,
        "repositories": [APP_REPO, BASE_REPO],
        "app_tags": APP_TAGS,
        "workers": WORKERS,
        "rounds": {"audit": AUDIT_ROUNDS, "noop_pipeline": NOOP_ROUNDS},
        "ansible_core": importlib.metadata.version("ansible-core"),
    }
    pushed = {}
    try:
        clean_up(registry, pushed)  # nothing from an earlier run
        started = time.monotonic()
        pushed, expected, planted = generate(registry)
        result["generate"] = {
            "push_seconds": round(time.monotonic() - started, 2),
            "push_workers": PUSH_WORKERS,
            "images": len(expected),
            "planted_drift": len(planted),
        }
        result["audit_images"] = len(expected)
        audit = measure_audit(expected, planted)
        result.update(audit)
        result["planted_drift"] = len(planted)
        result.update(measure_pipeline(registry))
        result["noop_pipeline_minus_overhead_seconds"] = round(
            result["noop_pipeline_seconds"] - result["playbook_overhead_seconds"], 2
        )
        result["pipeline_images"] = ["%s/%s" % (registry.name, repo) for repo in PIPE_REPOS]
    finally:
        result["deleted_manifests"] = clean_up(registry, pushed)
    problems = left_over(registry)
    if problems:
        raise BenchError("not cleaned up: %s" % problems)
    result["targets"] = {
        "audit_500_under_30s": result["audit_seconds"] < TARGETS["audit_seconds"],
        "noop_pipeline_under_10s": result["noop_pipeline_seconds"] < TARGETS["noop_pipeline_seconds"],
    }
    result["measured_at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ordered = {k: result.pop(k) for k in ("audit_images", "audit_seconds", "noop_pipeline_seconds")}
    Path(out_path).write_text(json.dumps({**ordered, **result}, indent=2) + "\n")
    print(
        "audit of %d images %.2f s (%d drift found), no-op pipeline %.2f s"
        % (
            ordered["audit_images"],
            ordered["audit_seconds"],
            result["audit_findings"]["drift"],
            ordered["noop_pipeline_seconds"],
        )
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BenchError as exc:
        sys.exit("bench images: %s" % exc)
