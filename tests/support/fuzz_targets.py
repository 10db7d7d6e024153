"""Fuzz targets: every parser of bytes someone else wrote, with seeds and input strategies.

Shared by the short pass in the normal suite (tests/test_fuzz.py) and the long runs of
scripts/fuzz.py. The contract each target checks: any input ends in a result or a
``LockmanError`` (a target may name one more documented outcome, e.g. ``SbomError``, which
every caller turns into a note); anything else (KeyError, OverflowError, RecursionError...) is
a finding.

A target is a callable taking bytes, a seed corpus (files under testdata/: our own fixtures and
the peers' vectors in testdata/conformance, testdata/sigstore-conformance, testdata/cosign, plus
small inline documents), and strategies: byte-level mutation of seeds, structure-aware
mutation (JSON and TOML trees with values swapped, deleted, wrapped; base64 fields mutated
inside), and for some targets a grammar (WWW-Authenticate headers, references). Targets that
read files write the bytes to a private temporary directory and go through the real reader
(UTF-8 decoding included); none runs a subprocess or touches the network.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hashlib
import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import tomlkit
from hypothesis import strategies as st

from lockman import console
from lockman.errors import LockmanError
from tests.support.paths import ROOT, TESTDATA

CONFORMANCE = TESTDATA / "sigstore-conformance" / "bundle-verify"

# ---------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One parser: ``run(bytes)`` must return or raise one of ``allowed``."""

    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]
    kind: str = "bytes"  # "json", "toml" or "text": which structure-aware mutator fits the seeds
    extra: Callable[[], list[st.SearchStrategy[bytes]]] = field(default=lambda: [])
    allowed: tuple[type[BaseException], ...] = (LockmanError,)
    examples: int = 120  # the short pass in the normal suite (all targets together <= ~60 s)


TARGETS: dict[str, Target] = {}


def target(name: str, seeds: Callable[[], list[bytes]], **kw: Any) -> Callable[[Callable[[bytes], object]], Callable[[bytes], object]]:
    def register(fn: Callable[[bytes], object]) -> Callable[[bytes], object]:
        TARGETS[name] = Target(name, fn, cache(seeds), **kw)
        return fn

    return register


class Finding(AssertionError):
    """A parser ended in an exception outside its contract."""


def check(t: Target, data: bytes) -> None:
    """Run one input; raise :class:`Finding` (with the cause chained) if the contract breaks.

    Secrets the parser registers for redaction (credentials found in a fuzzed config) are
    dropped again, so fuzzing leaves no global state behind for the tests that follow.
    """
    secrets = set(console._secrets)
    try:
        t.run(data)
    except t.allowed:
        pass
    except Exception as exc:
        raise Finding(f"{t.name}: {type(exc).__name__}: {exc!s:.300} on input {data[:400]!r}") from exc
    finally:
        console._secrets.clear()
        console._secrets.update(secrets)


@cache
def workdir() -> Path:
    """A private directory for the targets that go through files (removed at exit)."""
    d = tempfile.TemporaryDirectory(prefix="lockman-fuzz-")
    import atexit

    atexit.register(d.cleanup)
    return Path(d.name)


def _file(name: str, data: bytes) -> Path:
    path = workdir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _files(pattern: str, base: Path = TESTDATA) -> list[bytes]:
    return [p.read_bytes() for p in sorted(base.glob(pattern)) if p.is_file()]


def _text(data: bytes) -> str:
    """Bytes as the str a parser of decoded text gets (undecodable bytes kept as surrogates)."""
    return data.decode("utf-8", "surrogateescape")


# -- references -----------------------------------------------------------------------------


def _reference_seeds() -> list[bytes]:
    out: set[str] = set()
    for p in sorted((TESTDATA / "conformance").glob("*.json")):
        for row in (r for t in json.loads(p.read_text()).get("tables", []) for r in t.get("rows", [])):
            if isinstance(row.get("input"), str) and len(row["input"]) < 300:
                out.add(row["input"])
    return [s.encode("utf-8", "surrogateescape") for s in sorted(out)]


@target("reference", _reference_seeds, kind="text", examples=800)
def _reference(data: bytes) -> object:
    from lockman.model import reference

    ref = reference.parse(_text(data))
    return str(ref), ref.familiar(), ref.api_host


# -- manifests and indexes ------------------------------------------------------------------

_INDEX_SEED = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7, "digest": "sha256:" + "a" * 64,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7, "digest": "sha256:" + "b" * 64,
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
    ],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:" + "c" * 64},
}).encode()


def _manifest_seeds() -> list[bytes]:
    return [_INDEX_SEED, *_files("cosign/*/manifest.json")]


@target("manifest", _manifest_seeds, kind="json", examples=400)
def _manifest(data: bytes) -> object:
    from lockman.model import manifest as m

    digest = m.sha256_digest(data)
    out = []
    for content_type in (None, m.OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json; x=1"):
        try:
            parsed = m.parse_manifest(data, content_type, digest)
        except LockmanError:
            continue
        out.append((parsed.platform_children(), [d.is_attestation for d in parsed.manifests]))
        for child in parsed.manifests:
            if child.platform is not None:
                m.Platform.parse(str(child.platform))
    return out


# -- WWW-Authenticate and token responses ---------------------------------------------------

_CHALLENGES = [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push",error="insufficient_scope"',
    'Basic realm="Registry Realm"',
    'Basic realm="a", Bearer realm="https://t/token", service=x',
    'Bearer realm="https://t/\\"q\\"", service="s\\\\"',
    "Newauth realm=apps, type=1, title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\"",
]


@st.composite
def _challenge_header(draw: st.DrawFn) -> bytes:
    """WWW-Authenticate values from the grammar's pieces, glued right and wrong."""
    token = st.one_of(
        st.sampled_from(["Bearer", "Basic", "bearer", "realm", "service", "scope", "error", "Digest"]),
        st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,8}", fullmatch=True),
    )
    value = st.one_of(
        token,
        st.text(max_size=20).map(lambda s: '"' + s + '"'),
        st.text(st.sampled_from('\\",= \tab'), max_size=12).map(lambda s: '"' + s + '"'),
    )
    sep = st.sampled_from([",", ", ", " ,", ",,", " ", "", "\t", ", ,"])
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        parts.append(draw(token))
        parts.append(" ")
        for _ in range(draw(st.integers(0, 3))):
            parts += [draw(token), draw(st.sampled_from(["=", " = ", "= ", "=="])), draw(value), draw(sep)]
    return "".join(parts).encode("latin-1", "replace")


@target("www-authenticate", lambda: [c.encode() for c in _CHALLENGES], kind="text",
        extra=lambda: [_challenge_header()], examples=300)
def _www_authenticate(data: bytes) -> object:
    from lockman.registry.auth import _pick
    from lockman.registry.challenge import parse_challenges

    # httpx hands header values over as latin-1 text; a response may repeat the header.
    challenges = parse_challenges(data.decode("latin-1").split("\n"))
    picked = _pick(challenges)
    return picked.realm if picked else None


def _token_seeds() -> list[bytes]:
    return [
        b'{"token":"tok-abc","access_token":"tok-abc","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"}',
        b'{"access_token":"tok-xyz","refresh_token":"refresh-1","expires_in":60}',
        b'{"token":"t","expires_in":"300"}',
    ]


@target("token-response", _token_seeds, kind="json", examples=300)
def _token_response(data: bytes) -> object:
    from lockman.registry.auth import parse_token_response

    return parse_token_response(data, "registry.test", "auth.test")


# -- docker and podman credential files -----------------------------------------------------


def _credential_seeds() -> list[bytes]:
    basic = base64.b64encode(b"user:pass-word").decode()
    return [
        *_files("conformance/containers-image/docker-config/**/*.json"),
        json.dumps({"auths": {"registry.test": {"auth": basic}, "https://index.docker.io/v1/": {"auth": basic},
                              "registry.test/team/app": {"username": "u", "password": "p4ss-w0rd"},
                              "ghcr.io": {"identitytoken": "idtok-123"}},
                    "credHelpers": {"other.test": "none"}, "credsStore": ""}).encode(),
        json.dumps({"auths": {"http://registry.test:5000/v2/": {"auth": basic}}}).encode(),
    ]


class _NoHelpers:
    """Credential helpers are programs, not parsers: a fuzzed ``credHelpers`` runs none."""

    @staticmethod
    def store() -> Any:
        from lockman.registry.credentials import CredentialStore

        class Store(CredentialStore):
            def _helper(self, helper: str, registry: str) -> None:
                return None

        return Store()


def _credentials(data: bytes, env: dict[str, str]) -> object:
    base = workdir() / "creds"
    with mock.patch.dict(os.environ, {k: str(base / v) for k, v in env.items()}):
        os.environ["XDG_RUNTIME_DIR"] = str(base / "noruntime")  # never the machine's /run/containers
        if "REGISTRY_AUTH_FILE" not in env:  # when set, it is the only file read
            os.environ.pop("REGISTRY_AUTH_FILE", None)
        store = _NoHelpers.store()
        found = [store.get(r, repo) for r, repo in
                 (("registry.test", "team/app"), ("docker.io", "library/alpine"), ("ghcr.io", ""),
                  ("registry.test:5000", "x"))]
        return found, store.source("registry.test")


@target("docker-config", _credential_seeds, kind="json", examples=150)
def _docker_config(data: bytes) -> object:
    _file("creds/docker/config.json", data)
    return _credentials(data, {"DOCKER_CONFIG": "docker", "XDG_CONFIG_HOME": "nowhere"})


@target("podman-auth", _credential_seeds, kind="json", examples=150)
def _podman_auth(data: bytes) -> object:
    _file("creds/auth.json", data)
    return _credentials(data, {"DOCKER_CONFIG": "nodocker", "REGISTRY_AUTH_FILE": "auth.json",
                               "XDG_CONFIG_HOME": "nowhere"})


# -- registries.conf and certs.d ------------------------------------------------------------


@target("registries-conf", lambda: _files("conformance/containers-image/sysregistriesv2/**/*.conf"),
        kind="toml", examples=200)
def _registries_conf(data: bytes) -> object:
    from lockman.model import reference
    from lockman.registry import registries_conf as rc

    path = _file("registries.conf", data)
    out = []
    for drop_in in (False, True):
        try:
            conf = rc.RegistriesConf(rc._load_file(path, drop_in=drop_in))
        except LockmanError:
            continue
        for text in ("docker.io/library/alpine:3", "registry.test:5000/a/b@sha256:" + "a" * 64,
                     "example.com/foo", "sub.example.com/x/y:z", "localhost/app"):
            with contextlib.suppress(LockmanError):
                out.append(conf.endpoints(reference.parse(text)))
        out.append((conf.insecure_hosts(), conf.is_insecure("example.com:5000")))
    return out


@cache
def _tls_material() -> tuple[bytes, bytes]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("registry.test")
    return ca.cert_pem.bytes(), leaf.cert_chain_pems[0].bytes() + leaf.private_key_pem.bytes()


def _certs_d(name: str, data: bytes, pair: bool) -> object:
    from lockman.registry import tls

    d = workdir() / "certs.d" / "registry.test:5000"
    d.mkdir(parents=True, exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    (d / name).write_bytes(data)
    if pair:
        (d / "client.key").write_bytes(data)
    with mock.patch.dict(os.environ, {tls.CERTS_D_ENV: str(d.parent)}):
        return tls.build_context(tls.host_certs("registry.test:5000"), insecure=pair)


@target("certs-d-ca", lambda: [_tls_material()[0], *_files("cosign/fulcio*")], examples=40)
def _certs_d_ca(data: bytes) -> object:
    return _certs_d("ca.crt", data, pair=False)


@target("certs-d-client", lambda: [_tls_material()[1]], examples=40)
def _certs_d_client(data: bytes) -> object:
    return _certs_d("client.cert", data, pair=True)


# -- xcargo.toml, xcargo.lock, lockman.toml -------------------------------------------------

_XCARGO_SEED = b"""
[targets]
default = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
[targets."aarch64-unknown-linux-musl"]
container = { image = "ghcr.io/acme/musl:1@sha256:%s" }
[container]
image = "rust:1.70"
registry = "ghcr.io/acme"
runtime = "docker"
[profiles.release]
targets = ["armv7-unknown-linux-gnueabihf", "wasm32-unknown-unknown"]
""" % (b"a" * 64)


@target("xcargo-toml", lambda: [_XCARGO_SEED, *_files("bad-input/xcargo/*")], kind="toml", examples=200)
def _xcargo_toml(data: bytes) -> object:
    from lockman.model import xcargo

    config = xcargo.load_config(_file("xcargo.toml", data))
    return xcargo.warnings(config)


_LOCK_SEED = b"""version = 1

[[image]]
name = "docker.io/library/alpine"
tag = "3.19"
digest = "sha256:%(a)s"
media-type = "application/vnd.oci.image.index.v1+json"
source = "xcargo.toml: container.image"
platforms = [
    {os = "linux", architecture = "arm64", variant = "v8", digest = "sha256:%(b)s"},
]

[[image]]
name = "ghcr.io/acme/app"
tag = "1"
kind = "platform"
platform = "linux/amd64"
digest = "sha256:%(b)s"
index-digest = "sha256:%(a)s"
details-from = "sha256:%(a)s"
pinned = true
""" % {b"a": b"a" * 64, b"b": b"b" * 64}


@target("xcargo-lock", lambda: [_LOCK_SEED, *_files("bad-input/lockfile/*")], kind="toml", examples=200)
def _xcargo_lock(data: bytes) -> object:
    from lockman.model import lockfile

    try:
        return lockfile.read(_file("xcargo.lock", data))
    except lockfile.LockfileConflict as conflict:
        return conflict.sides


_POLICY_SEED = b"""
[[policy]]
images = ["ghcr.io/acme/*", "docker.io/library/alpine"]
key = "cosign.pub"
predicate-type = "slsaprovenance1"
insecure-ignore-tlog = true

[[policy]]
images = ["**"]
certificate-identity-regexp = "^https://github.com/acme/.*$"
certificate-oidc-issuer = "https://token.actions.githubusercontent.com"
certificate-github-workflow-repository = "acme/app"
trusted-root = "trusted_root.json"
"""


@target("lockman-toml", lambda: [_POLICY_SEED], kind="toml", examples=150)
def _lockman_toml(data: bytes) -> object:
    from lockman.signatures.policy import load_policy_file

    d = workdir() / "policy"
    if not (d / "cosign.pub").exists():
        _file("policy/cosign.pub", (TESTDATA / "cosign" / "cosign.pub").read_bytes())
        _file("policy/trusted_root.json", (CONFORMANCE / "rekor2-dsse-happy-path" / "trusted_root.json").read_bytes())
    policies = load_policy_file(_file("policy/lockman.toml", data))
    return [policies.policy_for(n) for n in ("ghcr.io/acme/app", "docker.io/library/alpine", "x.test/y")]


# -- Dockerfiles, compose files, workflows, Cross.toml (lockman.model.sources) ---------------


def _source_seeds(table: str, real: str) -> list[bytes]:
    rows = (
        json.loads((TESTDATA / "sources" / "renovate" / f"{table}.json").read_text())["rows"] if table else []
    )
    return [r["input"].encode("utf-8", "surrogateescape") for r in rows] + _files(real, TESTDATA / "sources")


def _in_place(text: str, found: list[Any]) -> object:
    """Beyond the contract: every span holds its reference, and pinning it round-trips."""
    from lockman.model.sources import Found, splice

    spans = {}
    for f in found:
        if isinstance(f, Found) and f.span is not None:
            assert text[f.span[0] : f.span[1]] == f.ref, f"span {f.span} does not hold {f.ref!r}"
            spans[f.span] = f.ref + "@sha256:" + "f" * 64
    if spans and "@sha256:" + "f" * 64 not in text:
        assert splice(text, spans).replace("@sha256:" + "f" * 64, "") == text  # only the references change
    return found


@target("dockerfile", lambda: _source_seeds("dockerfile", "real/*Dockerfile*"), kind="text", examples=400)
def _dockerfile(data: bytes) -> object:
    from lockman.model.sources import dockerfile

    text = _text(data)
    return _in_place(text, dockerfile.extract(text, "Dockerfile", {"CROSS_BASE_IMAGE": "x:1"}))


@target("compose", lambda: _source_seeds("docker-compose", "real/*compose*"), kind="text", examples=300)
def _compose(data: bytes) -> object:
    from lockman.model.sources import compose

    text = _text(data)
    return _in_place(text, compose.extract(text, "compose.yml"))


_DOTENV_SEED = b"""# compose's .env
REG=ghcr.io/acme
export TAG='1.2'
Q="a\\"b" # comment
EMPTY=
U=x #note
"""


@target("compose-dotenv", lambda: [_DOTENV_SEED], kind="text", examples=300)
def _compose_dotenv(data: bytes) -> object:
    from lockman.model.sources import compose

    env = compose.parse_env(_text(data))
    assert all(isinstance(v, str) and "\n" not in v for v in env.values())
    text = "services:\n  a:\n    image: ${" + (next(iter(env), "X")) + ":-a:1}\n"
    return _in_place(text, compose.extract(text, "compose.yml", env))


@target("workflow", lambda: _source_seeds("github-actions", "real/*.yml"), kind="text", examples=300)
def _workflow(data: bytes) -> object:
    from lockman.model.sources import workflow

    text = _text(data)
    return _in_place(text, workflow.extract(text, "ci.yml"))


_CROSS_SEED = b"""[build]
dockerfile = { file = "d/Dockerfile", build-args = { BASE = "ubuntu:22.04" } }
[target.aarch64-unknown-linux-gnu]
image = "ghcr.io/cross-rs/aarch64-unknown-linux-gnu:0.2.5"
[target.x86_64-unknown-linux-gnu]
image = { name = 'ghcr.io/cross-rs/x86_64-unknown-linux-gnu:main', toolchain = ["x86_64-unknown-linux-gnu"] }
"""


@target("cross-toml", lambda: [_CROSS_SEED], kind="toml", examples=200)
def _cross_toml(data: bytes) -> object:
    from lockman.model.sources import cross

    text = _text(data)
    found, _ = cross.extract(text, "Cross.toml")
    return _in_place(text, list(found))


# -- Sigstore: bundles, trusted roots, DSSE, in-toto, checkpoints, TSA responses ------------

IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
            ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
ISSUER = "https://token.actions.githubusercontent.com"
BUNDLE_CASES = ("happy-path-v0.3", "rekor2-dsse-happy-path", "managed-key-and-trusted-root")


@cache
def _case_context(name: str) -> tuple[str, Any]:
    """(subject digest, policy) the way tests/test_sigstore_conformance.py runs a case."""
    from lockman.signatures import (
        TrustedRoot,
        build_policy,
        default_trusted_root,
        load_public_key_file,
    )

    case = CONFORMANCE / name
    artifact = case / "artifact" if (case / "artifact").exists() else CONFORMANCE / "a.txt"
    digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    root = (TrustedRoot.from_file(case / "trusted_root.json") if (case / "trusted_root.json").exists()
            else default_trusted_root())
    if (case / "key.pub").exists():
        return digest, build_policy(key=load_public_key_file(case / "key.pub"), trusted_root=root)
    return digest, build_policy(certificate_identity=IDENTITY, certificate_oidc_issuer=ISSUER, trusted_root=root)


def _bundles() -> list[dict[str, Any]]:
    docs = (_try_json(p.read_bytes()) for p in sorted(CONFORMANCE.glob("*/bundle.sigstore.json")))
    return [d for d in docs if isinstance(d, dict)]  # some _fail cases are not even JSON


def _bundle_seeds() -> list[bytes]:
    return [*_files("*/bundle.sigstore.json", CONFORMANCE), *_files("cosign/*.sigstore.json")]


@target("sigstore-bundle", _bundle_seeds, kind="json", examples=150)
def _sigstore_bundle(data: bytes) -> object:
    from lockman.signatures.bundle import verify_bundle

    out = []
    for case in BUNDLE_CASES:
        digest, policy = _case_context(case)
        try:
            out.append(verify_bundle(digest, data, policy))
        except LockmanError:
            continue
    return out


@target("trusted-root", lambda: [*_files("*/trusted_root.json", CONFORMANCE)[:6],
                                 (ROOT / "lockman/signatures/data/trusted_root.json").read_bytes()],
        kind="json", examples=120)
def _trusted_root(data: bytes) -> object:
    from lockman.signatures.trust import TrustedRoot

    root = TrustedRoot.from_json(data, "fuzz")
    return [root.tlog_keys(k.log_id) for k in root.tlogs], [str(t.validity) for t in root.timestamp_authorities]


def _dsse_seeds() -> list[bytes]:
    return [json.dumps(b["dsseEnvelope"]).encode() for b in _bundles() if "dsseEnvelope" in b]


@target("dsse-envelope", _dsse_seeds, kind="json", examples=200)
def _dsse_envelope(data: bytes) -> object:
    from lockman.signatures.attestation import DSSE_MEDIA_TYPE, parse_envelope, verify_attestation_layer
    from lockman.signatures.cosign import SignatureLayer

    envelope = parse_envelope(data)
    digest, policy = _case_context("managed-key-and-trusted-root")
    with contextlib.suppress(LockmanError):
        verify_attestation_layer(digest, SignatureLayer(DSSE_MEDIA_TYPE, data, {}), policy)
    return envelope


def _statement_seeds() -> list[bytes]:
    return [base64.b64decode(b["dsseEnvelope"]["payload"]) for b in _bundles() if "dsseEnvelope" in b]


@target("in-toto-statement", _statement_seeds, kind="json", examples=300)
def _in_toto_statement(data: bytes) -> object:
    from lockman.signatures.bundle import _statement_subject_matches

    return _statement_subject_matches(data, "sha256:" + "a" * 64)


def _sbom_seeds() -> list[bytes]:
    spdx = {"spdxVersion": "SPDX-2.3", "packages": [{"name": "openssl", "versionInfo": "3.0.1"}, {"name": "zlib"}]}
    cdx = {"bomFormat": "CycloneDX", "components": [
        {"name": "musl", "version": "1.2", "group": "alpine", "components": [{"name": "inner", "version": "0"}]}]}
    statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://spdx.dev/Document",
                 "subject": [], "predicate": spdx}
    envelope = {"payloadType": "application/vnd.in-toto+json",
                "payload": base64.b64encode(json.dumps(statement).encode()).decode(), "signatures": []}
    typed = {"bomFormat": "CycloneDX", "components": [  # package URLs built from type and distro
        {"type": "operating-system", "name": "debian", "version": "12"},
        {"name": "openssl", "version": "3.0.11-1", "properties": [{"name": "syft:package:type", "value": "deb"}]}]}
    own = [json.dumps(d).encode() for d in (spdx, cdx, statement, envelope, typed)]
    return own + _files("osv/sboms/*.json")  # real SBOMs with package URLs (osv-scanner's)


@target("sbom", _sbom_seeds, kind="json", examples=200)
def _sbom(data: bytes) -> object:
    from lockman.model.insight import SbomError, parse_sbom

    out = []
    for hint in (None, "application/vnd.cyclonedx+json", "https://spdx.dev/Document/v2.3"):
        with contextlib.suppress(SbomError):
            out.append(parse_sbom(data, hint))
    return out


def _config_seeds() -> list[bytes]:
    config = {"created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
              "config": {"Labels": {"org.opencontainers.image.source": "https://github.com/acme/app",
                                    "org.opencontainers.image.revision": "abc123"}},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}}
    return [json.dumps(config).encode(), _INDEX_SEED]


@target("oci-config", _config_seeds, kind="json", examples=300)
def _oci_config(data: bytes) -> object:
    from lockman.model import insight

    annotations = insight.manifest_annotations(data)
    try:
        created, labels = insight.parse_config(data)
    except insight.SbomError:
        created, labels = None, {}
    return created, insight.oci_labels(annotations, labels)


def _checkpoints() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for p in sorted(CONFORMANCE.glob("*/bundle.sigstore.json")):
        doc = _try_json(p.read_bytes())
        for e in doc.get("verificationMaterial", {}).get("tlogEntries", []) if isinstance(doc, dict) else []:
            proof = e.get("inclusionProof") or {}
            if (proof.get("checkpoint") or {}).get("envelope"):
                out.append((p.parent.name, e))
    return out


@target("rekor-checkpoint", lambda: [e["inclusionProof"]["checkpoint"]["envelope"].encode() for _, e in _checkpoints()],
        kind="text", examples=300)
def _rekor_checkpoint(data: bytes) -> object:
    from lockman.signatures.checkpoint import parse_checkpoint, verify_checkpoint
    from lockman.signatures.keys import decode_b64

    text = _text(data)
    cp = parse_checkpoint(text)
    name, entry = next((n, e) for n, e in _checkpoints() if n == "rekor2-dsse-happy-path")
    proof = entry["inclusionProof"]
    _, policy = _case_context(name)
    with contextlib.suppress(LockmanError):
        verify_checkpoint(text, log_id=decode_b64(entry["logId"]["keyId"]), tree_size=cp.size,
                          root_hash=cp.root_hash, trusted_root=policy.root())
    return cp, proof


def _timestamp_cases() -> list[tuple[str, bytes, bytes]]:
    """(case, signature, token) for conformance cases with RFC 3161 timestamps."""
    out = []
    for p in sorted(CONFORMANCE.glob("*/bundle.sigstore.json")):
        b = _try_json(p.read_bytes())
        if not isinstance(b, dict):
            continue
        tokens = (b.get("verificationMaterial", {}).get("timestampVerificationData") or {}).get("rfc3161Timestamps")
        if not tokens or not (p.parent / "trusted_root.json").exists():
            continue
        sig = (b["messageSignature"]["signature"] if "messageSignature" in b
               else b["dsseEnvelope"]["signatures"][0]["sig"])
        out += [(p.parent.name, base64.b64decode(sig), base64.b64decode(t["signedTimestamp"])) for t in tokens]
    return out


@target("tsa-response", lambda: [t for _, _, t in _timestamp_cases()], examples=150)
def _tsa_response(data: bytes) -> object:
    from lockman.signatures.timestamp import verify_timestamp

    name, signature, _ = _timestamp_cases()[0]
    root = _trusted_root_of(name)
    return verify_timestamp(data, signature, root)


@cache
def _trusted_root_of(name: str) -> Any:
    from lockman.signatures.trust import TrustedRoot

    return TrustedRoot.from_file(CONFORMANCE / name / "trusted_root.json")


def _rekor_annotation_seeds() -> list[bytes]:
    from lockman.signatures.cosign import ANNOTATION_BUNDLE
    from tests.support.signing_helpers import fixture_layers

    out = [(TESTDATA / "cosign" / "rekor-set").read_bytes()]
    for d in ("dir-img-cosign-key-rekor-valid", "dir-img-cosign-valid"):
        out += [layer.annotations[ANNOTATION_BUNDLE].encode() for layer in fixture_layers(d)
                if ANNOTATION_BUNDLE in layer.annotations]
    return out


@target("rekor-bundle-annotation", _rekor_annotation_seeds, kind="json", examples=150)
def _rekor_bundle_annotation(data: bytes) -> object:
    """cosign's ``dev.sigstore.cosign/bundle`` annotation, through the layer verification."""
    from lockman.signatures.cosign import ANNOTATION_BUNDLE, SignatureLayer, verify_layer
    from lockman.signatures.rekor import parse_cosign_bundle
    from tests.support.signing_helpers import fixture_digest, fixture_layers

    entry = parse_cosign_bundle(_text(data))
    d = "dir-img-cosign-key-rekor-valid"
    layer = fixture_layers(d)[0]
    layer = SignatureLayer(layer.media_type, layer.payload, {**layer.annotations, ANNOTATION_BUNDLE: _text(data)})
    with contextlib.suppress(LockmanError):
        verify_layer(fixture_digest(d), layer, _cosign_policy())
    return entry


@cache
def _cosign_policy() -> Any:
    from lockman.signatures import build_policy
    from lockman.signatures.keys import load_public_key_file

    return build_policy(key=load_public_key_file(TESTDATA / "cosign" / "cosign2.pub"))


@target("tlog-entry", lambda: [json.dumps(e).encode() for _, e in _checkpoints()]
        + [json.dumps(e).encode() for b in _bundles() for e in b.get("verificationMaterial", {}).get("tlogEntries", [])][:8],
        kind="json", examples=200)
def _tlog_entry(data: bytes) -> object:
    from lockman import safejson
    from lockman.signatures.rekor import parse_bundle_tlog_entry

    try:
        doc = safejson.loads(data)
    except ValueError:
        return None
    return parse_bundle_tlog_entry(doc) if isinstance(doc, dict) else None


@target("pem", lambda: _files("cosign/*.pub") + _files("cosign/fulcio*") + [_tls_material()[0]], examples=150)
def _pem(data: bytes) -> object:
    """Public keys (cosign.pub, a policy's key) and certificate annotations (a registry's)."""
    from lockman.signatures import fulcio, keys

    out: list[object] = []
    with contextlib.suppress(LockmanError):
        out.append(keys.describe_key(keys.load_public_key(data)))
    with contextlib.suppress(LockmanError):
        for cert in fulcio.load_certificates(data):
            out.append((fulcio.certificate_identities(cert), fulcio.certificate_issuer(cert)))
    return out


# ------------------------------------------------------------------------------- strategies

_INTERESTING = [
    b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"=", b"\n", b"\n\n", b"\r", b"\x00", b"\xff", b"\xc3",
    b"\\u0000", b"\\ud800", b"1e999", b"-1", b"18446744073709551616", b"NaN", b"Infinity", b"null", b"true",
    b'""', b"[]", b"{}", b"\xe2\x80\x94 ", "²".encode(), "١".encode(), b"==", b"sha256:", b"@", b"/", b"'''",
    b"[[", b"]]", b"0x1", b"1979-05-27T07:32:00Z",
]


@st.composite
def byte_mutation(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few byte edits: flips, inserted tokens, deleted or repeated runs, a cut."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 5))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[pos:pos] = draw(st.one_of(st.sampled_from(_INTERESTING), st.binary(min_size=1, max_size=8)))
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == 3:
            chunk = data[pos : pos + draw(st.integers(1, 64))]
            data[pos:pos] = chunk * draw(st.integers(1, 8))
        elif op == 4:
            del data[pos:]
        elif data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
    return bytes(data)


_odd_strings = st.sampled_from([
    "", " ", "²", "١٢", "\ud800", "\x00", "\u2014", "a" * 300, "sha256:" + "a" * 64, "sha256:" + "A" * 64,
    "sha512:" + "a" * 128, "https://", "http://[::1", "::1", "*.", "*", "-", "..", "a/b/../c", "1e999",
    "9" * 30, "2024-13-45T99:99:99Z", "9999-12-31T23:59:59.999999999+14:00", "0001-01-01T00:00:00Z",
    "AAAA", "====", "MA==", "@", ":", "/",
])
_text_values = st.one_of(_odd_strings, st.text(max_size=24))
_odd_numbers = st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 2**64, 10**30, 10**400, -(10**400), 1.5,
                                float("inf"), float("-inf"), float("nan"), -0.0, 1e308, 5e-324])
_odd_scalars = st.one_of(  # containers copied: the tree mutator edits what it draws in place
    _odd_numbers, _odd_strings, st.sampled_from([None, True, False, [], {}, [None], {"": None}]).map(copy.deepcopy)
)
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1, 10**30, 10**400, 1.5, float("inf"),
                                                   float("-inf"), float("nan"), -0.0, 1e308]),
        st.integers(), _text_values,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text_values, inner, max_size=3)),
    max_leaves=6,
)
toml_values = st.recursive(
    st.one_of(st.booleans(), st.sampled_from([0, -1, 2**63 - 1, -(2**63), 1.5, float("inf"), float("nan")]),
              st.integers(-(2**63), 2**63 - 1), _text_values, st.datetimes()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text_values, inner, max_size=3)),
    max_leaves=6,
)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*here, i))


def _mutate_string(draw: st.DrawFn, value: str, codec: str) -> Any:
    """A base64 field gets its decoded bytes mutated (DER, JSON bodies, signatures inside)."""
    try:
        inner = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        inner = None
    if inner and len(value) >= 8:
        if inner[:1] in (b"{", b"[") and draw(st.booleans()):
            with contextlib.suppress(ValueError):
                return base64.b64encode(draw(json_mutation([inner]))).decode()
        return base64.b64encode(draw(byte_mutation([inner]))).decode()
    return _text(draw(byte_mutation([value.encode("utf-8", "surrogatepass")]))) if codec == "json" else value


def _mutate_tree(draw: st.DrawFn, doc: Any, values: st.SearchStrategy[Any], codec: str) -> Any:
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(doc))))
        parent, key = None, None
        node = doc
        for k in path:
            parent, key, node = node, k, node[k]
        op = draw(st.integers(0, 5))
        if op == 0 and isinstance(node, str):
            new = _mutate_string(draw, node, codec)
        elif op == 0 and isinstance(node, int | float):
            new = draw(_odd_numbers)
        elif op == 1 and isinstance(node, dict):
            new = node
            new[draw(_text_values)] = draw(values)
        elif op == 1 and isinstance(node, list) and node:
            new = node
            del new[draw(st.integers(0, len(node) - 1))]
        elif op == 2 and parent is not None and isinstance(parent, dict):
            del parent[key]
            continue
        elif op == 3:
            new = [node] if draw(st.booleans()) else {"x": node}
        elif op == 4:
            new = draw(values)
        else:
            new = draw(_odd_scalars)
        if parent is None:
            doc = new
        else:
            parent[key] = new
    return doc


@st.composite
def json_mutation(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A JSON seed with values swapped for odd ones (huge numbers, NaN, wrong types, surrogates)."""
    docs = [d for d in (_try_json(s) for s in seeds) if d is not None]
    if not docs:
        raise ValueError("no JSON seed")
    doc = _mutate_tree(draw, copy.deepcopy(draw(st.sampled_from(docs))), json_values, "json")
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@st.composite
def toml_mutation(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A TOML seed, parsed, with values swapped, then written again (tomlkit)."""
    docs = [d for d in (_try_toml(s) for s in seeds) if d is not None]
    doc = _mutate_tree(draw, copy.deepcopy(draw(st.sampled_from(docs))), toml_values, "toml")
    try:
        return tomlkit.dumps(doc if isinstance(doc, dict) else {"x": doc}).encode("utf-8", "surrogatepass")
    except Exception:  # tomlkit cannot write every tree (nan keys, odd nesting): keep the seed
        return draw(st.sampled_from(seeds))


def _try_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _try_toml(data: bytes) -> Any:
    try:
        return tomllib.loads(data.decode())
    except (ValueError, UnicodeDecodeError):
        return None


def strategy(t: Target) -> st.SearchStrategy[bytes]:
    """Everything a target is fed: mutated seeds, structured documents, raw bytes."""
    seeds = t.seeds()
    options: list[st.SearchStrategy[bytes]] = [byte_mutation(seeds), st.sampled_from(seeds)]
    if t.kind == "json" and any(_try_json(s) is not None for s in seeds):
        options += [json_mutation(seeds), json_mutation(seeds)]
    if t.kind == "toml" and any(_try_toml(s) is not None for s in seeds):
        options += [toml_mutation(seeds), toml_mutation(seeds)]
    if t.kind == "text":
        options.append(st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")))
    options += t.extra()
    options.append(st.binary(max_size=300))
    return st.one_of(options)


def _osv_record_seeds() -> list[bytes]:
    batch = b'{"results": [{"vulns": [{"id": "PYSEC-2023-74"}], "next_page_token": "abc"}, {}]}'
    return [*_files("osv/records/*.json"), batch]


@target("osv-record", _osv_record_seeds, kind="json", examples=300)
def _osv_record(data: bytes) -> object:
    """An OSV record or querybatch answer: parsed, rated, its ids checked (lockman.model.vulns)."""
    from lockman import safejson
    from lockman.model import vulns

    try:
        obj = safejson.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    record = vulns.parse_record(obj)
    if record is not None:
        assert vulns.valid_id(record.id) and all(vulns.valid_id(a) for a in record.aliases)
        assert len(record.summary) <= vulns.MAX_TEXT
    results = obj.get("results") if isinstance(obj, dict) else None
    for r in results if isinstance(results, list) else ():
        parsed = vulns.parse_batch_ids(r, 10)
        assert parsed is None or (len(parsed[0]) <= 10 and all(vulns.valid_id(i) for i in parsed[0]))
    return record, vulns.severity_of(obj) if isinstance(obj, dict) else None


def _purl_seeds() -> list[bytes]:
    return [
        b"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12",
        b"pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.22.0&origin=zlib",
        b"pkg:deb/ubuntu/pcre3@2%3A8.39-12ubuntu0.1?arch=amd64&distro=focal&source=pcre3",
        b"pkg:npm/%40angular/core@16.0.0",
        b"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        b"pkg:rpm/redhat/openssl@3.0.7-1.el9?arch=x86_64#sub/path",
    ]


@target("package-url", _purl_seeds, kind="text", examples=400)
def _package_url(data: bytes) -> object:
    """A package URL from an SBOM → the OSV query built from it (lockman.model.vulns)."""
    from lockman.model import vulns

    p = vulns.parse_purl(_text(data))
    if p is None:
        return None
    query = vulns.osv_package(p)
    json.dumps(query)  # what is sent must serialise
    return vulns.parse_purl(str(p)), query
