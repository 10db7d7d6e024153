"""`lockman verify` / `update` checking cosign signatures in a real docker-registry.

Every ``dir-img-*`` fixture is laid out as cosign lays it out (manifest written into the
registry's storage, ``.sig`` manifest pushed over HTTP) and verified through the CLI; tampered
and forged variants must fail with exit 1 and say why.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from lockman.signatures.cosign import ANNOTATION_BUNDLE, ANNOTATION_SIGNATURE
from lockman.signatures.keys import key_fingerprint, load_public_key_file
from tests.support.cosign_registry import (
    attach_bundles,
    push_signatures,
    store_fixture,
    trusted_root_json,
)
from tests.support.fixtures import unique_repo
from tests.support.registry import OCI_MANIFEST, Registry
from tests.support.signing_helpers import (
    T0,
    TESTDATA,
    FakeFulcio,
    FakeRekor,
    fixture_layers,
    keyed_layer,
    keyless_layer,
    make_bundle,
    new_key,
    public_pem,
)

pytestmark = pytest.mark.registry

COSIGN_PUB = TESTDATA / "cosign.pub"
COSIGN2_PUB = TESTDATA / "cosign2.pub"
IDENTITY = "signer@lockman.test"
ISSUER = "https://issuer.lockman.test"


def locked_project(tmp_path: Path, run, image: str) -> Path:
    """xcargo.toml using ``image``, locked with ``lockman update`` (no policy yet)."""
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{image}"\n')
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    return cfg


def fixture_image(tmp_path: Path, registry: Registry, run, fixture: str, sigs: str | None = None):
    """Store ``fixture``'s manifest as ``repo:v1``, push the ``.sig`` of ``sigs`` (default same)."""
    repo = unique_repo("cosign")
    digest = store_fixture(registry, repo, "v1", fixture)
    push_signatures(registry, repo, digest, fixture_layers(sigs or fixture))
    return locked_project(tmp_path, run, f"{registry.host}/{repo}:v1"), repo, digest


# ------------------------------------------------------------------ every dir-img fixture

COSIGN_FP = key_fingerprint(load_public_key_file(COSIGN_PUB))
COSIGN2_FP = key_fingerprint(load_public_key_file(COSIGN2_PUB))

CASES = [
    # fixture, signatures from, key, extra flags, exit code, expected text
    ("dir-img-cosign-valid", None, COSIGN_PUB, ["--insecure-ignore-tlog"], 0,
     f"signed by key {COSIGN_FP} (.sig layer 0, transparency log not checked)"),
    ("dir-img-cosign-valid", None, COSIGN_PUB, [], 1, "layer 0: no Rekor bundle annotation"),
    ("dir-img-cosign-valid-2", None, COSIGN_PUB, ["--insecure-ignore-tlog"], 0, ".sig layer 0"),
    ("dir-img-cosign-mixed", None, COSIGN_PUB, ["--insecure-ignore-tlog"], 0, ".sig layer 1"),
    ("dir-img-cosign-modified-manifest", None, COSIGN_PUB, ["--insecure-ignore-tlog"], 1,
     "layer 0: payload digest sha256:634a8f35"),
    ("dir-img-cosign-other-attachment", None, COSIGN_PUB, ["--insecure-ignore-tlog"], 1,
     "no application/vnd.dev.cosign.simplesigning.v1+json layers"),
    ("dir-img-cosign-valid", "dir-img-cosign-no-manifest", COSIGN_PUB, ["--insecure-ignore-tlog"], 0,
     f"signed by key {COSIGN_FP}"),
    ("dir-img-cosign-key-rekor-valid", None, COSIGN2_PUB, [], 0,
     f"signed by key {COSIGN2_FP} (.sig layer 0, Rekor log index 11608800)"),
    ("dir-img-cosign-key-rekor-valid", None, COSIGN_PUB, [], 1,
     f"signature does not verify with key {COSIGN_FP}"),
]  # fmt: skip


@pytest.mark.parametrize(("fixture", "sigs", "key", "flags", "code", "text"), CASES)
def test_fixture_verdicts(tmp_path, registry, run, fixture, sigs, key, flags, code, text) -> None:
    cfg, repo, digest = fixture_image(tmp_path, registry, run, fixture, sigs)
    r = run("verify", "--config", cfg, "--key", key, *flags)
    assert r.code == code, r.err
    if code == 0:
        assert text in r.out and r.err == ""
        assert "1 signed" in r.out
    else:
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], r.err
        assert f"{repo}:v1 ({digest}): signature check failed (key " in lines[0]


def test_missing_signature_tag(tmp_path, registry, run) -> None:
    repo = unique_repo("cosign")
    store_fixture(registry, repo, "v1", "dir-img-cosign-valid")
    cfg = locked_project(tmp_path, run, f"{registry.host}/{repo}:v1")
    r = run("verify", "--config", cfg, "--key", COSIGN_PUB)
    assert r.code == 1
    assert ".sig signatures and no Sigstore bundle" in r.err


# ------------------------------------------------------------------ tampered variants


def _tampered(tmp_path, registry, run, edit) -> str:
    repo = unique_repo("cosign")
    digest = store_fixture(registry, repo, "v1", "dir-img-cosign-key-rekor-valid")
    (layer,) = fixture_layers("dir-img-cosign-key-rekor-valid")
    push_signatures(registry, repo, digest, [edit(layer)])
    cfg = locked_project(tmp_path, run, f"{registry.host}/{repo}:v1")
    r = run("verify", "--config", cfg, "--key", COSIGN2_PUB)
    assert r.code == 1, r.out
    return r.err


def test_flipped_signature_bit(tmp_path, registry, run) -> None:
    def flip(layer):
        sig = bytearray(base64.b64decode(layer.annotations[ANNOTATION_SIGNATURE]))
        sig[12] ^= 0x01
        return replace(
            layer, annotations={**layer.annotations, ANNOTATION_SIGNATURE: base64.b64encode(sig).decode()}
        )

    assert f"signature does not verify with key {COSIGN2_FP}" in _tampered(tmp_path, registry, run, flip)


def test_altered_set(tmp_path, registry, run) -> None:
    def alter(layer):
        bundle = json.loads(layer.annotations[ANNOTATION_BUNDLE])
        bundle["Payload"]["logIndex"] += 1
        return replace(layer, annotations={**layer.annotations, ANNOTATION_BUNDLE: json.dumps(bundle)})

    assert "Rekor SET does not verify" in _tampered(tmp_path, registry, run, alter)


def _fresh_image(registry: Registry, salt: str):
    repo = unique_repo("signed")
    img = registry.push_image(repo, "v1", salt=salt)
    return repo, img


def _keyless_project(tmp_path, registry, run, **layer_kw):
    """A fresh image signed keyless by a forged Fulcio + Rekor; trusted root written to disk."""
    rekor, fulcio, priv = FakeRekor(), FakeFulcio(), new_key("p256")
    repo, img = _fresh_image(registry, "keyless")
    leaf = fulcio.leaf(priv)
    push_signatures(
        registry, repo, img.digest, [keyless_layer(priv, leaf, fulcio, img.digest, rekor, **layer_kw)]
    )
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor, fulcio))
    cfg = locked_project(tmp_path, run, f"{registry.host}/{repo}:v1")
    return cfg, root


def test_keyless_signer_identity_issuer_and_expiry(tmp_path, registry, run) -> None:
    cfg, root = _keyless_project(tmp_path, registry, run)
    base = ["verify", "--config", cfg, "--trusted-root", root]
    ok = run(*base, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER)
    assert ok.code == 0, ok.err
    assert f"signed by {IDENTITY} (issuer {ISSUER}) (.sig layer 0, Rekor log index" in ok.out

    r = run(*base, "--certificate-identity", "mallory@evil.test", "--certificate-oidc-issuer", ISSUER)
    assert r.code == 1 and f"certificate identity '{IDENTITY}' does not match 'mallory@evil.test'" in r.err
    r = run(
        *base, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", "https://accounts.google.com"
    )
    assert r.code == 1 and f"certificate issuer '{ISSUER}' != expected 'https://accounts.google.com'" in r.err
    r = run(
        *base,
        "--certificate-identity-regexp",
        r".*@lockman\.test",
        "--certificate-oidc-issuer-regexp",
        "https://issuer\\..*",
    )
    assert r.code == 0, r.err
    # Without --trusted-root the shipped public-good root does not know the forged CA.
    r = run(
        "verify", "--config", cfg, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER
    )
    assert r.code == 1 and "unknown Rekor log" in r.err
    # Keyless needs identity AND issuer: bad usage, before any network.
    r = run(*base, "--certificate-identity", IDENTITY)
    assert r.code == 2 and "certificate-oidc-issuer" in r.err


def test_keyless_certificate_expired_at_signing_time(tmp_path, registry, run) -> None:
    late = int((T0 + timedelta(minutes=30)).timestamp())  # leaf valid T0-5min .. T0+5min
    cfg, root = _keyless_project(tmp_path, registry, run, integrated_time=late)
    r = run("verify", "--config", cfg, "--trusted-root", root,
            "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER)  # fmt: skip
    assert r.code == 1
    assert "signing certificate" in r.err and "not valid at 2025-03-01T12:30" in r.err


# ------------------------------------------------------------------ Sigstore bundles


def test_bundle_through_fallback_index_then_sig_fallback(tmp_path, registry, run) -> None:
    rekor, priv = FakeRekor(), new_key("p384")
    repo, img = _fresh_image(registry, "bundle")
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor))
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(priv))
    attach_bundles(
        registry, repo, img.digest, OCI_MANIFEST, len(img.manifest), [make_bundle(priv, img.digest, rekor)]
    )
    cfg = locked_project(tmp_path, run, f"{registry.host}/{repo}:v1")
    r = run("verify", "--config", cfg, "--key", pub, "--trusted-root", root)
    assert r.code == 0, r.err
    assert f"signed by key {key_fingerprint(priv.public_key())} (Sigstore bundle, Rekor log index" in r.out

    # Wrong key: the bundle fails and there is no .sig to fall back to.
    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(new_key("p256")))
    r = run("verify", "--config", cfg, "--key", other, "--trusted-root", root)
    assert r.code == 1
    assert "bundle sha256:" in r.err and "DSSE signature does not verify" in r.err
    assert "no sha256-" in r.err

    # An attestation-type bundle is not a signature; a valid .sig then wins (cosign v3 order).
    attest = make_bundle(priv, img.digest, rekor, predicate_type="https://slsa.dev/provenance/v1")
    attach_bundles(registry, repo, img.digest, OCI_MANIFEST, len(img.manifest), [attest])
    push_signatures(registry, repo, img.digest, [keyed_layer(priv, img.digest, rekor)])
    r = run("verify", "--config", cfg, "--key", pub, "--trusted-root", root)
    assert r.code == 0, r.err
    assert "(.sig layer 0, Rekor log index" in r.out


def test_bundle_through_referrers_api(tmp_path, registry, fault_proxy, run) -> None:
    """A registry with the OCI 1.1 referrers API (faked by the proxy; 2.8 lacks it)."""
    from tests.support.cosign_registry import referrer_manifest, referrers_index

    rekor, priv = FakeRekor(), new_key("ed25519")
    repo, img = _fresh_image(registry, "referrers")
    subject = {"mediaType": OCI_MANIFEST, "size": len(img.manifest), "digest": img.digest}
    entry = referrer_manifest(registry, repo, subject, make_bundle(priv, img.digest, rekor))
    fault_proxy.add(
        rf"/v2/{repo}/referrers/{img.digest}$",
        "status",
        status=200,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
        body=referrers_index([entry]),
    )
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor))
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(priv))
    cfg = locked_project(tmp_path, run, f"{fault_proxy.host}/{repo}:v1")
    r = run("verify", "--config", cfg, "--key", pub, "--trusted-root", root)
    assert r.code == 0, r.err
    assert "(Sigstore bundle, Rekor log index" in r.out
    assert fault_proxy.count("GET", f"/referrers/{img.digest}") == 1
    fallback = f"/manifests/{img.digest.replace(':', '-')}"
    assert not [p for _, p, _ in fault_proxy.requests if p.endswith(fallback)]  # API answered


# ------------------------------------------------------------------ multi-platform


def test_index_digest_must_be_signed_and_recursive(tmp_path, registry, run) -> None:
    priv = new_key("p256")
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(priv))
    repo = unique_repo("multi")
    idx = registry.push_index(repo, "v1", ["linux/amd64", "linux/arm64/v8"])
    cfg = locked_project(tmp_path, run, f"{registry.host}/{repo}:v1")
    args = ["verify", "--config", cfg, "--key", pub, "--insecure-ignore-tlog"]

    # Only a platform is signed: the index digest (what a pull by digest trusts) is not.
    amd64 = idx.children["linux/amd64"].digest
    push_signatures(registry, repo, amd64, [keyed_layer(priv, amd64, None)])
    r = run(*args)
    assert r.code == 1 and f"({idx.digest}): signature check failed" in r.err

    push_signatures(registry, repo, idx.digest, [keyed_layer(priv, idx.digest, None)])
    assert run(*args).code == 0
    r = run(*args, "--recursive")
    assert r.code == 1
    arm = idx.children["linux/arm64/v8"].digest
    assert r.err.count("error:") == 1 and f"(linux/arm64/v8 {arm}): signature check failed" in r.err
    assert "(linux/amd64): signed by key" in r.out

    push_signatures(registry, repo, arm, [keyed_layer(priv, arm, None)])
    r = run(*args, "--recursive")
    assert r.code == 0, r.err
    assert r.out.count("signed by key") == 3


def test_platform_pin_is_trusted_through_its_signed_index(tmp_path, registry, run) -> None:
    """`update --platform` locks one platform's manifest; signers sign the index. The pin passes
    when the index listing it is signed, or when it is signed itself; --recursive wants both."""
    priv = new_key("p256")
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(priv))
    repo = unique_repo("platpin")
    idx = registry.push_index(repo, "v1", ["linux/amd64", "linux/arm64/v8"])
    amd64 = idx.children["linux/amd64"].digest
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    sig = ["--key", pub, "--insecure-ignore-tlog"]
    lock = tmp_path / "xcargo.lock"

    r = run("update", "--config", cfg, "--platform", "linux/amd64", *sig)  # nothing signed yet
    assert r.code == 1 and "not locked" in r.err and not lock.exists()
    assert "index: " in r.err and "platform manifest:" in r.err  # both ways were tried

    push_signatures(registry, repo, idx.digest, [keyed_layer(priv, idx.digest, None)])
    r = run("update", "--config", cfg, "--platform", "linux/amd64", *sig)
    assert r.code == 0, r.err
    assert f'digest = "{amd64}"' in lock.read_text() and f'index-digest = "{idx.digest}"' in lock.read_text()
    v = run("verify", "--config", cfg, *sig)
    assert v.code == 0, v.err
    assert "signed by key" in v.out
    r = run("verify", "--config", cfg, *sig, "--recursive")  # the platform manifest is unsigned
    assert r.code == 1 and f"(linux/amd64 {amd64}): signature check failed" in r.err

    push_signatures(registry, repo, amd64, [keyed_layer(priv, amd64, None)])
    assert run("verify", "--config", cfg, *sig, "--recursive").code == 0

    # A lock whose index-digest names an index that does not list the pinned manifest.
    other = registry.push_index(repo, "other", ["linux/s390x"])
    push_signatures(registry, repo, other.digest, [keyed_layer(priv, other.digest, None)])
    lock.write_text(lock.read_text().replace(idx.digest, other.digest))
    r = run("verify", "--config", cfg, "--key", pub, "--insecure-ignore-tlog", "--recursive")
    assert r.code == 1 and f"{amd64} is not a platform of index {other.digest}" in r.err


# ------------------------------------------------------------------ lockman.toml and update


def test_policy_file_drives_plain_verify_and_update(tmp_path, registry, run) -> None:
    priv = new_key("rsa")
    repo = unique_repo("policy")
    other = unique_repo("unsigned")
    img = registry.push_image(repo, "v1", salt="p1")
    registry.push_image(other, "v1", salt="u1")
    push_signatures(registry, repo, img.digest, [keyed_layer(priv, img.digest, None)])
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub").write_bytes(public_pem(priv))
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        f'[container]\nimage = "{registry.host}/{repo}:v1"\n\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "{registry.host}/{other}:v1"\n'
    )
    (tmp_path / "lockman.toml").write_text(
        f'[[policy]]\nimages = ["{registry.host}/policy/*"]\nkey = "keys/release.pub"\n'
        "insecure-ignore-tlog = true\n"
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert f"{registry.host}/{repo}:v1: signed by key {key_fingerprint(priv.public_key())}" in r.out
    r = run("verify", "--config", cfg)
    assert r.code == 0, r.err
    assert "2 images verified against their registries, 1 signed" in r.out
    assert other not in r.out  # no rule covers it: not checked

    # The tag moves to an unsigned image: update refuses it and keeps the lock.
    lock = (tmp_path / "xcargo.lock").read_bytes()
    new = registry.push_image(repo, "v1", salt="p2-unsigned")
    r = run("update", "--config", cfg)
    assert r.code == 1
    assert f"{repo}:v1 ({new.digest}): signature check failed" in r.err and "; not locked" in r.err
    assert (tmp_path / "xcargo.lock").read_bytes() == lock
    assert run("update", "--config", cfg, "--check").code == 1
    assert (tmp_path / "xcargo.lock").read_bytes() == lock

    # A policy that names another key fails plain verify of the signed, locked image.
    shutil.copy(TESTDATA / "cosign.pub", tmp_path / "keys" / "release.pub")
    r = run("verify", "--config", cfg)
    assert r.code == 1 and "signature does not verify with key" in r.err


@pytest.mark.parametrize(
    "spelling",
    ["{n}:1.70", "docker.io/{n}:1.70", "index.docker.io/library/{n}:1.70", "docker.io/library/{n}:1.70"],
)
def test_hub_rule_refuses_the_unsigned_image_whatever_its_spelling(
    tmp_path, registry, run, monkeypatch, spelling: str
) -> None:
    """A rule for ``docker.io/library/*`` covers ``rust:1.70`` too (Docker Hub rewritten to the test
    registry by registries.conf, as nothing here reaches docker.io): the unsigned image is not locked, whichever way it is written."""
    name = unique_repo("hubpolicy").replace("/", "-")
    registry.push_image(f"library/{name}", "1.70", salt="unsigned")
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nprefix = "docker.io"\nlocation = "{registry.host}"\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    (tmp_path / "release.pub").write_bytes(public_pem(new_key("p256")))
    (tmp_path / "lockman.toml").write_text(
        '[[policy]]\nimages = ["docker.io/library/*"]\nkey = "release.pub"\ninsecure-ignore-tlog = true\n'
    )
    image = spelling.format(n=name)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{image}"\n')
    r = run("update", "--config", cfg)
    assert r.code == 1, r.err
    assert f"{image} (sha256:" in r.err and "signature check failed" in r.err
    assert not (tmp_path / "xcargo.lock").exists()


def test_bad_policy_inputs_are_usage_errors(tmp_path, registry, run) -> None:
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "127.0.0.1:1/x:v1"\n')
    (tmp_path / "lockman.toml").write_text('[[policy]]\nimages = ["*"]\nkey = "missing.pub"\n')
    r = run("verify", "--config", cfg)
    assert r.code == 2 and "lockman.toml: [[policy]] #1: key:" in r.err
    (tmp_path / "lockman.toml").unlink()
    r = run("verify", "--config", cfg, "--insecure-ignore-tlog")
    assert r.code == 2 and "need a signer" in r.err
    r = run("verify", "--config", cfg, "--key", tmp_path / "nope.pem")
    assert r.code == 2 and "nope.pem" in r.err


# ------------------------------------------------------------------ hostile or failing registry


def _signed_behind_proxy(tmp_path, registry, fault_proxy, run):
    priv = new_key("p256")
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(priv))
    repo, img = _fresh_image(registry, "proxy")
    layer = keyed_layer(priv, img.digest, None)
    push_signatures(registry, repo, img.digest, [layer])
    cfg = locked_project(tmp_path, run, f"{fault_proxy.host}/{repo}:v1")
    return cfg, pub, layer


def test_payload_blob_altered_in_transit(tmp_path, registry, fault_proxy, run) -> None:
    cfg, pub, layer = _signed_behind_proxy(tmp_path, registry, fault_proxy, run)
    payload_digest = "sha256:" + hashlib.sha256(layer.payload).hexdigest()
    fault_proxy.add(
        rf"/blobs/{payload_digest}$", "alter", transform=lambda b: b.replace(b"sha256", b"sha512")
    )
    r = run("verify", "--config", cfg, "--key", pub, "--insecure-ignore-tlog")
    assert r.code == 1
    assert f"blob {payload_digest}: digest mismatch" in r.err


def test_registry_failure_fetching_signatures_is_exit_3(tmp_path, registry, fault_proxy, run) -> None:
    cfg, pub, _ = _signed_behind_proxy(tmp_path, registry, fault_proxy, run)
    fault_proxy.add(r"\.sig$", "status", status=403)
    r = run("verify", "--config", cfg, "--key", pub, "--insecure-ignore-tlog")
    assert r.code == 3
    assert "signature check failed" in r.err and "denied" in r.err


def test_offline_says_signatures_are_not_checked(tmp_path, registry, run) -> None:
    cfg, _, _ = fixture_image(tmp_path, registry, run, "dir-img-cosign-valid")
    r = run("verify", "--config", cfg, "--offline", "--key", COSIGN_PUB)
    assert r.code == 0
    assert "signatures are not checked" in r.err and "signed by" not in r.out
