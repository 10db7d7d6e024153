"""lockman.errors: the hierarchy is the kind, the fields are the facts, the line is rendered."""

from __future__ import annotations

import pytest

from lockman import errors, report
from lockman.errors import (
    EXIT_REGISTRY,
    EXIT_USAGE,
    EXIT_VERIFY,
    AuthError,
    DescriptorMismatch,
    DigestMismatch,
    InputError,
    InvalidReference,
    LockmanError,
    NotFound,
    NotServed,
    RegistryError,
    SizeMismatch,
    TooLarge,
    UnsupportedMediaType,
    VerificationError,
)
from lockman.model.lockfile import LockfileConflict


@pytest.mark.parametrize(
    ("cls", "base", "exit_code"),
    [
        (LockmanError, Exception, EXIT_USAGE),
        (InputError, LockmanError, EXIT_USAGE),
        (InvalidReference, InputError, EXIT_USAGE),
        (VerificationError, LockmanError, EXIT_VERIFY),
        (DigestMismatch, VerificationError, EXIT_VERIFY),
        (DescriptorMismatch, VerificationError, EXIT_VERIFY),
        (SizeMismatch, DescriptorMismatch, EXIT_VERIFY),
        (TooLarge, VerificationError, EXIT_VERIFY),
        (UnsupportedMediaType, VerificationError, EXIT_VERIFY),
        (NotServed, VerificationError, EXIT_VERIFY),
        (RegistryError, LockmanError, EXIT_REGISTRY),
        (NotFound, RegistryError, EXIT_REGISTRY),
        (AuthError, RegistryError, EXIT_REGISTRY),
    ],
)
def test_hierarchy_and_exit_codes(cls: type[LockmanError], base: type[Exception], exit_code: int) -> None:
    assert issubclass(cls, base)
    assert cls.exit_code == exit_code
    assert cls("x").exit_code == exit_code


def test_the_kind_is_the_class() -> None:
    assert DigestMismatch.kind == "digest-mismatch"
    assert DescriptorMismatch.kind == SizeMismatch.kind == "media-type-mismatch"
    assert TooLarge.kind == "too-large"
    assert UnsupportedMediaType.kind == "unsupported-media-type"
    assert VerificationError.kind == "unverifiable"
    assert NotFound.kind == "not-served"
    assert RegistryError.kind == AuthError.kind == "registry"


def test_every_verification_kind_is_a_documented_problem_kind() -> None:
    """verify reports a VerificationError's kind: each must be one report.PROBLEM_KINDS lists."""
    kinds = {c.kind for c in vars(errors).values() if isinstance(c, type) and issubclass(c, VerificationError)}
    assert kinds - set(report.PROBLEM_KINDS) == set()


def test_the_hierarchy_is_drawn_in_the_module_docstring() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, LockmanError)]
    assert errors.__doc__ is not None
    assert [c.__name__ for c in classes if c.__name__ not in errors.__doc__] == []


# -- fields and the one line ---------------------------------------------------------------------
def test_fields_default_to_unknown() -> None:
    e = RegistryError("boom")
    assert (e.message, e.subject, e.registry, e.status, e.code, e.attempts) == ("boom", None, None, None, None, 1)
    assert str(e) == "boom"


def test_subject_and_registry_head_the_line() -> None:
    assert str(DigestMismatch("digest mismatch", subject="rust:1.70")) == "rust:1.70: digest mismatch"
    assert str(RegistryError("cannot connect", registry="ghcr.io")) == "ghcr.io: cannot connect"
    e = RegistryError("HTTP 500", subject="rust:1.70", registry="docker.io", status=500, code="UNKNOWN")
    assert str(e) == "docker.io: rust:1.70: HTTP 500"
    assert (e.status, e.code) == (500, "UNKNOWN")


def test_a_subject_that_shows_its_registry_is_not_headed_by_it_twice() -> None:
    e = RegistryError("HTTP 500", subject="ghcr.io/o/app:1", registry="ghcr.io")
    assert str(e) == "ghcr.io/o/app:1: HTTP 500"


def test_in_message_keeps_the_message_as_written() -> None:
    e = AuthError(
        "docker.io: authentication required for rust:1.70", subject="rust:1.70", registry="docker.io", in_message=True
    )
    assert str(e) == "docker.io: authentication required for rust:1.70"
    assert e.subject == "rust:1.70"


def test_attempts_end_the_line_only_after_retries() -> None:
    assert str(RegistryError("timed out", registry="r.test", attempts=1)) == "r.test: timed out"
    e = RegistryError("timed out", registry="r.test", attempts=4)
    assert str(e) == "r.test: timed out (gave up after 4 attempts)"


def test_one_line() -> None:
    e = NotFound("manifest unknown", subject="a:1", registry="r.test", status=404, code="MANIFEST_UNKNOWN")
    assert "\n" not in str(e.with_subject("b:2"))


# -- with_subject ----------------------------------------------------------------------------------
def test_with_subject_names_an_error_that_names_no_image() -> None:
    e = RegistryError("cannot connect", registry="ghcr.io", attempts=3)
    named = e.with_subject("app:1")
    assert str(named) == "app:1: ghcr.io: cannot connect (gave up after 3 attempts)"
    assert type(named) is RegistryError and named.exit_code == EXIT_REGISTRY
    assert (named.subject, named.registry, named.attempts) == ("app:1", "ghcr.io", 3)
    assert (e.subject, str(e)) == (None, "ghcr.io: cannot connect (gave up after 3 attempts)")  # a copy


def test_with_subject_is_idempotent() -> None:
    once = RegistryError("cannot connect", registry="ghcr.io").with_subject("app:1")
    assert once.with_subject("app:1") is once
    assert str(once.with_subject("app:1")) == "app:1: ghcr.io: cannot connect"


def test_with_subject_leaves_an_error_about_the_image_alone() -> None:
    """A child manifest's error (the image's name with a digest) already names the image."""
    e = DigestMismatch("digest mismatch", subject="app:1@sha256:" + "a" * 64)
    assert e.with_subject("app:1") is e
    assert e.names("app:1") and not e.names("other:2")


def test_with_subject_keeps_the_class_and_its_fields() -> None:
    e = TooLarge("manifest declares 5 bytes, over the 4-byte limit").with_subject("app:1")
    assert isinstance(e, TooLarge) and e.kind == "too-large"
    assert str(e) == "app:1: manifest declares 5 bytes, over the 4-byte limit"


def test_with_subject_copies_a_subclass_with_its_own_constructor() -> None:
    conflict = LockfileConflict("xcargo.lock", (None, None))
    named = conflict.with_subject("app:1")
    assert isinstance(named, LockfileConflict) and named.sides == (None, None)
    assert str(named) == "app:1: xcargo.lock has merge conflicts: run `lockman update`"



# -- where: the place inside the subject -----------------------------------------------------------
def test_where_alone_then_the_subject_in_front_of_it() -> None:
    """Pure code knows the place in a document, the caller whose document it is: one line."""
    e = VerificationError("descriptor has an invalid size", where="manifests[3]")
    assert str(e) == "manifests[3]: descriptor has an invalid size"
    named = e.with_subject("app:1")
    assert str(named) == "app:1 manifests[3]: descriptor has an invalid size"
    assert (named.subject, named.where) == ("app:1", "manifests[3]")
    assert (e.subject, str(e)) == (None, "manifests[3]: descriptor has an invalid size")  # a copy
    assert named.with_subject("app:1") is named


def test_where_with_the_subject_at_the_raise_site_reads_the_same() -> None:
    at_once = SizeMismatch("blob is 3 bytes", subject="app:1", where="(layer sha256:abc)")
    later = SizeMismatch("blob is 3 bytes", where="(layer sha256:abc)").with_subject("app:1")
    assert str(at_once) == str(later) == "app:1 (layer sha256:abc): blob is 3 bytes"
    assert at_once.names("app:1") and later.names("app:1")


def test_about_names_every_lockman_error_raised_inside() -> None:
    with pytest.raises(DescriptorMismatch) as caught, errors.about("app:1"):
        raise DescriptorMismatch("descriptor says x", where="config")
    assert (caught.value.subject, str(caught.value)) == ("app:1", "app:1 config: descriptor says x")
    with pytest.raises(KeyError), errors.about("app:1"):
        raise KeyError("not ours")  # a bug stays a bug


def test_not_served_keeps_the_registry_404s_facts_and_line() -> None:
    """A locked digest's 404 becomes exit 1 with the same one line and facts (issue 27)."""
    e = NotFound("r.example/a@sha256:x: manifest unknown to r.example", subject="r.example/a@sha256:x",
                 registry="r.example", status=404, code="MANIFEST_UNKNOWN", in_message=True)  # fmt: skip
    served = NotServed.of(e)
    assert str(served) == str(e) and served.exit_code == 1 and served.kind == "not-served"
    assert (served.subject, served.registry, served.status, served.code) == (e.subject, "r.example", 404, e.code)
