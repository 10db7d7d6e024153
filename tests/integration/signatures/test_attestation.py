"""Classic cosign attestations (``sha256-<hex>.att``, DSSE layers with a Rekor ``intoto`` SET).

End to end on a real docker-registry: ``verify --type`` passes on a classically attested image,
forged attestations fail with one line naming why, and update's SBOM insight says whether the
``.att`` verified. The pure verifier's tests are in tests/unit/signatures/test_attestation.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockman.signatures import Policy, build_policy
from lockman.signatures.attestation import DSSE_MEDIA_TYPE
from lockman.signatures.cosign import (
    ANNOTATION_SIGNATURE,
    SignatureLayer,
)
from lockman.signatures.keys import key_fingerprint
from tests.support.cosign_registry import push_attestations, push_signatures, trusted_root_json
from tests.support.fixtures import unique_repo
from tests.support.paths import ROOT as REPO
from tests.support.registry import Registry
from tests.support.signing_helpers import (
    FakeFulcio,
    FakeRekor,
    attestation_layer,
    bundle_from,
    edit_envelope,
    flip_sig,
    keyed_layer,
    new_key,
    public_pem,
)

D = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64
SLSA1 = "https://slsa.dev/provenance/v1"
SPDX = "https://spdx.dev/Document"
IDENTITY = "signer@lockman.test"
ISSUER = "https://issuer.lockman.test"
CONFORMANCE = REPO / "testdata" / "sigstore-conformance" / "bundle-verify"


@pytest.fixture(scope="module")
def signers():
    rekor, fulcio, priv = FakeRekor(), FakeFulcio(), new_key("p256")
    return rekor, fulcio, priv, fulcio.leaf(priv)


def _keyed(rekor, priv) -> Policy:
    return build_policy(key=priv.public_key(), trusted_root=FakeFulcio().trusted_root(rekor))


def _keyless(rekor, fulcio, identity: str = IDENTITY) -> Policy:
    return build_policy(
        certificate_identity=identity, certificate_oidc_issuer=ISSUER, trusted_root=fulcio.trusted_root(rekor)
    )


# ------------------------------------------------------------------ end to end, real registry


def _project(tmp_path: Path, registry: Registry, run, layers_for) -> tuple[Path, str, str]:
    """A fresh image whose ``.att`` holds ``layers_for(digest)``, locked without a policy."""
    repo = unique_repo("att")
    img = registry.push_image(repo, "v1", salt=repo)
    push_attestations(registry, repo, img.digest, layers_for(img.digest))
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    return cfg, repo, img.digest


@pytest.mark.registry
def test_verify_type_passes_on_a_classically_attested_image(tmp_path, registry, run, signers) -> None:
    rekor, fulcio, priv, leaf = signers
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor, fulcio))
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(priv))
    cfg, _, _ = _project(tmp_path, registry, run, lambda d: [
        attestation_layer(priv, d, rekor, SPDX),  # another attestation first: skipped
        attestation_layer(priv, d, rekor),
        attestation_layer(priv, d, rekor, leaf=leaf, fulcio=fulcio, intoto_version="0.0.1"),
    ])  # fmt: skip
    r = run("verify", "--config", cfg, "--type", "slsaprovenance1", "--key", pub, "--trusted-root", root)
    assert r.code == 0, r.err
    assert f"signed by key {key_fingerprint(priv.public_key())} (.att layer 1, Rekor log index" in r.out
    assert f"attestation {SLSA1})" in r.out
    r = run("verify", "--config", cfg, "--type", SLSA1, "--trusted-root", root,
            "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER)  # fmt: skip
    assert r.code == 0, r.err
    assert f"signed by {IDENTITY} (issuer {ISSUER}) (.att layer 2" in r.out
    # An attestation is no signature: without --type the image has none.
    r = run("verify", "--config", cfg, "--key", pub, "--trusted-root", root)
    assert r.code == 1 and ".sig signatures and no Sigstore bundle" in r.err


E2E_FORGERIES = {
    # name: (layer for the digest, keyless?, text of the one stderr line)
    "flipped DSSE signature": (
        lambda d, r, f, p, lf: edit_envelope(attestation_layer(p, d, r), flip_sig), False,
        "DSSE signature does not verify with key"),
    "statement for another digest": (
        lambda d, r, f, p, lf: attestation_layer(p, OTHER, r), False, f"statement subject {OTHER} != "),
    "wrong predicate type": (
        lambda d, r, f, p, lf: attestation_layer(p, d, r, SPDX), False, f"predicate type '{SPDX}' is not one of"),
    "SET for another envelope": (
        lambda d, r, f, p, lf: bundle_from(attestation_layer(p, d, r), attestation_layer(p, d, r, predicate={"x": 1})),
        False, "tlog entry records a different DSSE payload hash"),
    "wrong key": (
        lambda d, r, f, p, lf: attestation_layer(new_key("p256"), d, r), False,
        "DSSE signature does not verify with key"),
    "wrong identity": (
        lambda d, r, f, p, lf: attestation_layer(p, d, r, leaf=f.leaf(p, identity="mallory@lockman.test"), fulcio=f),
        True, "mallory@lockman.test"),
}  # fmt: skip


@pytest.mark.registry
@pytest.mark.parametrize("name", E2E_FORGERIES)
def test_forged_classic_attestations_fail_verify(tmp_path, registry, run, signers, name: str) -> None:
    rekor, fulcio, priv, leaf = signers
    build, keyless, text = E2E_FORGERIES[name]
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor, fulcio))
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(priv))
    cfg, repo, digest = _project(tmp_path, registry, run, lambda d: [build(d, rekor, fulcio, priv, leaf)])
    signer = ["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER] if keyless else ["--key", pub]
    r = run("verify", "--config", cfg, "--type", "slsaprovenance1", "--trusted-root", root, *signer)
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert f"{repo}:v1 ({digest}): signature check failed" in lines[0]
    assert f"{digest.replace(':', '-')}.att: no attestation matched: layer 0: " in lines[0]
    assert text in lines[0]


@pytest.mark.registry
def test_missing_att_tag_says_so(tmp_path, registry, run, signers) -> None:
    priv = signers[2]
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(priv))
    repo = unique_repo("att")
    img = registry.push_image(repo, "v1", salt=repo)
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    r = run("verify", "--config", cfg, "--type", "slsaprovenance1", "--key", pub, "--insecure-ignore-tlog")
    assert r.code == 1
    tag = img.digest.replace(":", "-") + ".att"
    assert f"no {tag} attestations and no Sigstore bundle (attestation {SLSA1} required)" in r.err


@pytest.mark.registry
def test_insight_says_whether_an_att_sbom_verified(tmp_path, registry, run, signers) -> None:
    from tests.support.images import push_build
    from tests.support.project import image_project as project

    rekor, fulcio, priv, _ = signers
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor, fulcio))
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(priv))
    repo = unique_repo("att-insight")

    def build(n: int, packages: dict[str, str], signer) -> None:
        b = push_build(registry, repo, "v1", [bytes([n]) * 10], f"2026-01-0{n}T00:00:00Z", {})
        push_signatures(registry, repo, b.digest, [keyed_layer(priv, b.digest, rekor)])  # update needs it
        bom = {"bomFormat": "CycloneDX", "components": [{"name": k, "version": v} for k, v in packages.items()]}
        push_attestations(registry, repo, b.digest, [attestation_layer(signer, b.digest, rekor, "https://cyclonedx.org/bom", predicate=bom)])

    build(1, {"musl": "1.2.4"}, priv)
    cfg = project(tmp_path, f"{registry.host}/{repo}:v1")
    assert run("update", "--config", cfg).code == 0
    flags = ["--format", "json", "--key", pub, "--trusted-root", root, "--dry-run"]
    build(2, {"musl": "1.2.5"}, priv)
    r = run("update", "--config", cfg, *flags)
    assert r.code == 0, r.err
    sbom = json.loads(r.out)["updates"][0]["insight"]["sbom"]
    assert sbom["changed"] == [{"name": "musl", "old_version": "1.2.4", "new_version": "1.2.5"}]
    assert sbom["signature"] == {"verified": True, "detail": f"signed by key {key_fingerprint(priv.public_key())}"}
    build(3, {"musl": "1.2.6"}, new_key("p256"))  # the SBOM signed by someone else
    r = run("update", "--config", cfg, *flags)
    assert r.code == 0, r.err  # a note, never a failure
    sbom = json.loads(r.out)["updates"][0]["insight"]["sbom"]
    assert sbom["changed"] == [{"name": "musl", "old_version": "1.2.4", "new_version": "1.2.6"}]
    assert sbom["signature"]["verified"] is False
    assert sbom["signature"]["detail"].startswith("DSSE signature does not verify with key")


@pytest.mark.registry
def test_hostile_att_layers_are_one_clean_line(tmp_path, registry, run, signers) -> None:
    """A registry controls the statement text and the blob size: escapes never reach the
    terminal, a huge envelope is refused by its size, and either way the verdict is one line."""
    rekor, fulcio, priv, _ = signers
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root_json(rekor, fulcio))
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(priv))
    evil = "\x1b]8;;http://evil\x07\x1b[2J\r\nerror: all good"
    cfg, _, _ = _project(tmp_path, registry, run, lambda d: [
        attestation_layer(priv, "sha256:" + evil, rekor),
        attestation_layer(priv, d, rekor, "https://x/" + evil),
    ])  # fmt: skip
    r = run("verify", "--config", cfg, "--type", "slsaprovenance1", "--key", pub, "--trusted-root", root)
    assert r.code == 1
    assert len(r.err.strip().splitlines()) == 1 and "\x1b" not in r.err and "\x07" not in r.err, r.err
    assert "layer 0: statement subject sha256:" in r.err and "layer 1: predicate type 'https://x/" in r.err

    huge = SignatureLayer(DSSE_MEDIA_TYPE, b"{" + b" " * (1024 * 1024) + b"}", {ANNOTATION_SIGNATURE: ""})
    cfg, _, _ = _project(tmp_path, registry, run, lambda d: [huge])
    r = run("verify", "--config", cfg, "--type", "slsaprovenance1", "--key", pub, "--trusted-root", root)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
    assert "larger than the 1048576-byte limit" in r.err
