# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Image lineage: the labels image_build writes, the FROM line of a Dockerfile,
# build-input hashes, and the audit rules (depth, drift of a parent rebuilt
# under the same tag, app tags that are no Git SHA, images with no source).
# Pure functions, unit-tested.

from __future__ import annotations

import hashlib
import json
import re

LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_CREATED = "org.opencontainers.image.created"
LABEL_KIND = "dockyard.image.kind"
LABEL_PARENT_REF = "dockyard.parent.ref"
LABEL_PARENT_DIGEST = "dockyard.parent.digest"
LABEL_DEPTH = "dockyard.lineage.depth"
LABEL_INPUTS = "dockyard.build.inputs"

KINDS = ("base", "middleware", "app")
GIT_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
FINDINGS = ("too_deep", "drift", "tag_not_sha", "no_source", "not_current_release")


def is_git_sha(tag):
    return bool(GIT_SHA_RE.match(tag or ""))


def parse_from(dockerfile_text, build_args=None):
    """The image the final stage is built FROM, with ${ARG} / $ARG expanded from ARG defaults and build args."""
    args = {}
    stages = []
    final = None
    for raw in _logical_lines(dockerfile_text):
        words = raw.split()
        if not words:
            continue
        instruction = words[0].upper()
        if instruction == "ARG" and len(words) > 1:
            name, dummy, default = words[1].partition("=")
            args[name] = (build_args or {}).get(name, default)
        elif instruction == "FROM":
            image = words[1] if words[1] != "--platform" else words[3]
            if words[1].startswith("--platform="):
                image = words[2]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), ""), image)
            alias = words[-1] if len(words) >= 4 and words[-2].upper() == "AS" else None
            final = stages_lookup(stages, image)
            stages.append((alias, final))
    if final is None:
        raise ValueError("the Dockerfile has no FROM line")
    return final


def stages_lookup(stages, image):
    """FROM <earlier stage alias> means that stage's base."""
    for alias, base in stages:
        if alias and alias == image:
            return base
    return image


def _logical_lines(text):
    line = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not line:
            continue
        if stripped.endswith("\\"):
            line += stripped[:-1] + " "
            continue
        yield line + stripped
        line = ""
    if line:
        yield line


def build_inputs(revision, parent_digest, build_args, secret_args, dockerfile, context, target):
    """What makes a build what it is; secrets enter only as a hash of their values."""
    secret_hash = hashlib.sha256(json.dumps(secret_args or {}, sort_keys=True).encode()).hexdigest()
    material = [revision, parent_digest, build_args or {}, secret_hash, dockerfile, context, target]
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]


def image_labels(source, revision, created, kind, parent_ref, parent_digest, depth, inputs, version=None):
    labels = {
        LABEL_SOURCE: source,
        LABEL_REVISION: revision,
        LABEL_CREATED: created,
        LABEL_KIND: kind,
        LABEL_PARENT_REF: parent_ref,
        LABEL_PARENT_DIGEST: parent_digest or "",
        LABEL_DEPTH: str(depth),
        LABEL_INPUTS: inputs,
    }
    if version:
        labels["org.opencontainers.image.version"] = version
    return labels


def depth_of(parent_labels):
    """An image is one level deeper than its parent. An image built FROM one we did not build (an upstream
    OS image) is level 1: the OS base of the three levels."""
    try:
        return int((parent_labels or {}).get(LABEL_DEPTH) or 0) + 1
    except ValueError:
        return 1


def audit(images, parent_digests, max_depth=3):
    """Findings over registry images.

    images: [{repository, tag, digest, labels}]; parent_digests: {parent ref: digest its tag points to now}.
    Returns (findings, apps_to_rebuild): findings [{image, finding, detail}], apps sorted.
    """
    findings = []
    rebuild = set()
    for image in images:
        name = "%s:%s" % (image["repository"], image["tag"])
        labels = image.get("labels") or {}
        kind = labels.get(LABEL_KIND)
        if not labels.get(LABEL_SOURCE):
            findings.append({"image": name, "finding": "no_source", "detail": "no %s label" % LABEL_SOURCE})
        depth = labels.get(LABEL_DEPTH)
        if depth and depth.isdigit() and int(depth) > max_depth:
            findings.append(
                {"image": name, "finding": "too_deep", "detail": "%s levels, %d at most" % (depth, max_depth)}
            )
        if kind == "app" and not is_git_sha(image["tag"]):
            findings.append({"image": name, "finding": "tag_not_sha", "detail": "app tag is not a 40-hex Git SHA"})
        parent_ref, recorded = labels.get(LABEL_PARENT_REF), labels.get(LABEL_PARENT_DIGEST)
        current = parent_digests.get(parent_ref) if parent_ref else None
        if recorded and current and current != recorded:
            findings.append(
                {
                    "image": name,
                    "finding": "drift",
                    "detail": "built FROM %s@%s, the tag now points to %s" % (parent_ref, recorded, current),
                }
            )
            rebuild.add(name)
    return findings, sorted(rebuild)


def summary(images, findings, apps_to_rebuild):
    lines = ["%d images audited, %d findings" % (len(images), len(findings))]
    for kind in FINDINGS:
        hits = [f for f in findings if f["finding"] == kind]
        if hits:
            lines.append("%s: %s" % (kind, ", ".join(sorted(f["image"] for f in hits))))
    if apps_to_rebuild:
        lines.append("rebuild: %s" % ", ".join(apps_to_rebuild))
    return "\n".join(lines)
