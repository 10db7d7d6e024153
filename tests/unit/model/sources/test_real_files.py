"""Real files from public repositories (testdata/sources/real, provenance in the README)."""

from __future__ import annotations

from pathlib import Path

from lockman.model import pinning
from lockman.model import reference as refmod
from lockman.model.sources import Found, compose, dockerfile, splice, workflow

REAL = Path(__file__).parents[4] / "testdata" / "sources" / "real"


def refs(found: list[object]) -> list[tuple[str, int]]:
    return [(f.ref, f.line) for f in found if isinstance(f, Found)]


def test_cross_rs_images_multi_stage_with_index_copy() -> None:
    text = (REAL / "cross-Dockerfile.native.centos").read_text()
    # COPY --from=0 names the first stage; the ARGs are stage ARGs that no FROM uses
    assert refs(dockerfile.extract(text, "D")) == [("ubuntu:24.04", 1), ("centos:7", 13)]
    text = (REAL / "cross-Dockerfile.aarch64-linux-android").read_text()
    assert refs(dockerfile.extract(text, "D")) == [("ubuntu:24.04", 1)]


def test_renovate_own_workflow_with_a_bot_pinned_docker_step() -> None:
    text = (REAL / "renovate-build.yml").read_text()
    got = workflow.extract(text, "build.yml")
    assert len(got) == 1 and isinstance(got[0], Found)
    assert got[0].ref == (
        "rhysd/actionlint:1.7.12@sha256:b1934ee5f1c509618f2508e6eb47ee0d3520686341fec936f3b79331f9315667"
    )
    assert got[0].line == 367


def test_docker_lock_demo_compose_skips_services_it_builds() -> None:
    text = (REAL / "docker-lock-docker-compose-1.yml").read_text()
    assert refs(compose.extract(text, "c.yml")) == [("dockerlocktestaccount/golang", 5)]


def test_pin_writes_what_docker_lock_rewrite_writes() -> None:
    text = (REAL / "docker-lock-Dockerfile").read_text()
    want = (REAL / "docker-lock-Dockerfile-rewrite").read_text()
    digest = want.rsplit("@", 1)[1].strip()
    (f,) = dockerfile.extract(text, "D")
    assert isinstance(f, Found) and f.span is not None
    assert splice(text, {f.span: pinning.pinned_text(refmod.parse(f.ref), digest)}) == want
