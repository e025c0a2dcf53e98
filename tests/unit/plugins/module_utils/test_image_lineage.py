import re

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._image_lineage import (
    LABEL_DEPTH,
    LABEL_KIND,
    LABEL_PARENT_DIGEST,
    LABEL_PARENT_REF,
    LABEL_SOURCE,
    audit,
    build_inputs,
    depth_of,
    is_git_sha,
    parse_from,
    summary,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize(
    "dockerfile, args, expected",
    [
        ("FROM debian:bookworm\nRUN true\n", None, "debian:bookworm"),
        ("ARG BASE=reg/base:1\nFROM ${BASE}\n", None, "reg/base:1"),
        ("ARG BASE=reg/base:1\nFROM $BASE\n", {"BASE": "reg/base:2"}, "reg/base:2"),
        ("FROM reg/build:1 AS build\nRUN make\nFROM reg/run:1\nCOPY --from=build /x /x\n", None, "reg/run:1"),
        ("FROM reg/base:1 AS base\nFROM base\n", None, "reg/base:1"),
        ("FROM --platform=linux/amd64 reg/base:1\n", None, "reg/base:1"),
        ("# comment\nFROM \\\n  reg/base:1\n", None, "reg/base:1"),
    ],
)
def test_parse_from(dockerfile, args, expected):
    assert parse_from(dockerfile, args) == expected


def test_parse_from_without_from():
    with pytest.raises(ValueError, match="no FROM line"):
        parse_from("RUN true\n")


def test_git_sha():
    assert is_git_sha(SHA)
    assert not is_git_sha("v1.2.3")
    assert not is_git_sha(SHA[:7])


def test_build_inputs_change_with_parent_and_args_not_secret_visibility():
    base = build_inputs(SHA, D1, {"A": "1"}, {"TOKEN": "s"}, "Dockerfile", ".", None)
    assert base == build_inputs(SHA, D1, {"A": "1"}, {"TOKEN": "s"}, "Dockerfile", ".", None)
    assert base != build_inputs(SHA, D2, {"A": "1"}, {"TOKEN": "s"}, "Dockerfile", ".", None)
    assert base != build_inputs(SHA, D1, {"A": "2"}, {"TOKEN": "s"}, "Dockerfile", ".", None)
    assert base != build_inputs(SHA, D1, {"A": "1"}, {"TOKEN": "t"}, "Dockerfile", ".", None)
    assert re.fullmatch("[0-9a-f]{32}", base)


def test_depth():
    assert depth_of(None) == 1  # built FROM an upstream image: our OS base level
    assert depth_of({"vendor": "x"}) == 1
    assert depth_of({LABEL_DEPTH: "1"}) == 2
    assert depth_of({LABEL_DEPTH: "3"}) == 4


def image(repo, tag, kind, parent=None, parent_digest=None, depth="1", source="https://git/x"):
    labels = {LABEL_KIND: kind, LABEL_DEPTH: depth}
    if source:
        labels[LABEL_SOURCE] = source
    if parent:
        labels[LABEL_PARENT_REF] = parent
        labels[LABEL_PARENT_DIGEST] = parent_digest
    return {"repository": repo, "tag": tag, "digest": D1, "labels": labels}


def test_audit_finds_drift_depth_tags_and_missing_source():
    images = [
        image("reg/base", "1.0", "base"),
        image("reg/mw", "2.0", "middleware", "reg/base:1.0", D1, "2"),
        image("reg/app", SHA, "app", "reg/mw:2.0", D1, "3"),
        image("reg/app", "latest", "app", "reg/mw:2.0", D2, "3"),
        image("reg/deep", SHA, "app", "reg/app:" + SHA, D1, "4"),
        image("reg/handmade", "1", None, source=None),
    ]
    findings, rebuild = audit(images, {"reg/base:1.0": D1, "reg/mw:2.0": D2, "reg/app:" + SHA: D1}, max_depth=3)
    by_kind = {}
    for f in findings:
        by_kind.setdefault(f["finding"], []).append(f["image"])
    assert by_kind == {
        "drift": ["reg/app:" + SHA],
        "tag_not_sha": ["reg/app:latest"],
        "too_deep": ["reg/deep:" + SHA],
        "no_source": ["reg/handmade:1"],
    }
    assert rebuild == ["reg/app:" + SHA]
    text = summary(images, findings, rebuild)
    assert text.startswith("6 images audited, 4 findings")
    assert "rebuild: reg/app:" + SHA in text


def test_audit_clean():
    images = [image("reg/base", "1.0", "base"), image("reg/app", SHA, "app", "reg/base:1.0", D1, "2")]
    assert audit(images, {"reg/base:1.0": D1}) == ([], [])
