"""Property-based tests (hypothesis): the reference grammar and lockfile round trips.

- Every valid reference survives parse → familiar() → parse unchanged, and familiar() gives
  back exactly what was written.
- Any text at all either parses or raises InvalidReference: never another exception.
- Any lockfile model survives dumps → loads, and the text is a fixed point.
- Any text fed to the lockfile or xcargo.toml readers is either accepted or an InputError.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lockman.errors import InputError, InvalidReference
from lockman.model import lockfile, reference
from lockman.model.lockfile import LockedImage, LockedPlatform, Lockfile
from lockman.model.manifest import MANIFEST_TYPES
from lockman.model.xcargo import parse_config

# Loaded CI machines: no per-example deadline, no complaint about slow generation.
# LOCKMAN_HYPOTHESIS=deep runs 30x the examples (worth doing after touching the grammar).
settings.register_profile("lockman", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.register_profile("lockman-deep", parent=settings.get_profile("lockman"), max_examples=3000)
settings.load_profile("lockman-deep" if os.environ.get("LOCKMAN_HYPOTHESIS") == "deep" else "lockman")

LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
alnum = st.text(LOWER, min_size=1, max_size=6)
separator = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_component(draw: st.DrawFn) -> str:
    parts = [draw(alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(separator), draw(alnum)]
    return "".join(parts)


domain_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
port = st.integers(1, 65535).map(lambda p: f":{p}")


@st.composite
def domain(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["dotted", "port", "localhost", "ipv6"]))
    if kind == "localhost":
        return "localhost" + draw(st.one_of(st.just(""), port))
    if kind == "ipv6":
        return "[" + draw(st.sampled_from(["::1", "fe80::1", "2001:db8::42"])) + "]" + draw(port)
    labels = draw(st.lists(domain_label, min_size=2 if kind == "dotted" else 1, max_size=3))
    suffix = draw(port) if kind == "port" else draw(st.one_of(st.just(""), port))
    return ".".join(labels) + suffix


tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
digest = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    st.text("0123456789abcdef", min_size=128, max_size=128).map(lambda h: f"sha512:{h}"),
)


@st.composite
def valid_reference(draw: st.DrawFn) -> str:
    components = draw(st.lists(path_component(), min_size=1, max_size=3))
    name = "/".join(components)
    if draw(st.booleans()):
        name = f"{draw(domain())}/{name}"
    elif len(components) > 1:  # docker's rule: such a first component would be a registry host
        assume("." not in components[0] and components[0] != "localhost")
    assume(len(name) <= reference.MAX_NAME_LENGTH)
    text = name
    if draw(st.booleans()):
        text += ":" + draw(tag)
    if draw(st.booleans()):
        text += "@" + draw(digest)
    return text


@given(valid_reference())
@example("rust")
@example("docker.io/library/rust:1.70")
@example("localhost:5000/a/b:c@sha256:" + "a" * 64)
def test_valid_references_round_trip(text: str) -> None:
    as_written = reference.parse(text, default_tag=None)
    assert as_written.familiar() == text  # format ∘ parse is the identity on what was written
    ref = reference.parse(text)
    assert reference.parse(ref.familiar()) == ref  # parse ∘ format is the identity
    qualified = reference.parse(str(ref))  # the fully qualified form means the same image
    assert (qualified.registry, qualified.repository, qualified.tag, qualified.digest) == (
        ref.registry,
        ref.repository,
        ref.tag,
        ref.digest,
    )


def _parse_or_invalid(text: str) -> reference.Reference | None:
    try:
        return reference.parse(text, default_tag=None)
    except InvalidReference:
        return None


@given(st.text(max_size=300))
@example("")
@example("@")
@example(":")
@example("a" * 300)
@example("rust:" + "t" * 200)
@example("a@sha256:" + "A" * 64)
@example("[::1/x")
def test_any_text_parses_or_raises_invalid_reference(text: str) -> None:
    ref = _parse_or_invalid(text)
    if ref is not None:
        assert ref.familiar() == text


@given(valid_reference(), st.integers(0, 400), st.characters())
def test_mutated_references_never_crash(text: str, at: int, ch: str) -> None:
    at %= len(text) + 1
    for mutated in (text[:at] + ch + text[at:], text[:at] + text[at + 1 :]):
        ref = _parse_or_invalid(mutated)
        if ref is not None:
            assert ref.familiar() == mutated


# -- lockfiles -------------------------------------------------------------------------------
free_text = st.text(max_size=40)
nonempty_text = st.text(min_size=1, max_size=20)
platform = st.builds(
    LockedPlatform,
    os=nonempty_text,
    architecture=nonempty_text,
    digest=digest,
    variant=st.one_of(st.none(), nonempty_text),
)


@st.composite
def locked_image(draw: st.DrawFn) -> LockedImage:
    ref = reference.parse(draw(valid_reference()), default_tag=None)
    return LockedImage(
        name=ref.written,
        tag=draw(st.one_of(st.just(""), tag)),
        digest=draw(digest),
        media_type=draw(st.one_of(st.just(""), st.sampled_from(sorted(MANIFEST_TYPES)), free_text)),
        source=draw(free_text),
        pinned=draw(st.booleans()),
        platforms=tuple(draw(st.lists(platform, max_size=3))),
    )


lockfiles = st.lists(locked_image(), max_size=5, unique_by=lambda i: i.key).map(
    lambda xs: Lockfile(tuple(xs))
)


@given(lockfiles)
def test_lockfile_round_trip(lock: Lockfile) -> None:
    text = lockfile.dumps(lock)
    again = lockfile.loads(text)
    assert again == lock.sorted()
    assert lockfile.dumps(again) == text  # the text is a fixed point


@given(st.text(max_size=400))
@example("version = 1\n[[image]]\nname = 1\n")
@example("version = 1\nimage = [1]\n")
@example("version = 1\n[[image]]\nname='a'\ntag='b'\ndigest='sha256:" + "0" * 64 + "'\nplatforms=[1]\n")
@example("version = true\n")
@example("<<<<<<<")
@example("<<<<<<< ours\nversion = 1\n=======\nversion = 2\n>>>>>>> theirs\n")
def test_any_lockfile_text_loads_or_raises_input_error(text: str) -> None:
    try:
        lockfile.loads(text, "xcargo.lock")
    except lockfile.LockfileConflict as e:  # named as the issue asks: "<file> has merge conflicts: ..."
        assert str(e).startswith("xcargo.lock has merge conflicts: ") and "\n" not in str(e)
    except InputError as e:
        assert str(e).startswith("xcargo.lock: ") and "\n" not in str(e)


@given(st.text(max_size=400))
@example("[container]\nimage = []\n")
@example("[targets]\ndefault = [[]]\n")
@example("[profiles]\nx = 1\n")
@example('[targets."a".container]\nimage = "x"\n')
@example("targets = []\n")
def test_any_config_text_parses_or_raises_input_error(text: str) -> None:
    try:
        parse_config(text, Path("xcargo.toml"))
    except InputError as e:
        assert str(e).startswith("xcargo.toml: ") and "\n" not in str(e)
