"""End to end: today's Sigstore bundles (Rekor v2 entry, RFC 3161 timestamp, SLSA attestation)
attached to an image in a real docker-registry, verified by ``lockman verify``.

Our own signers: Fulcio-shaped CA with GitHub workflow claims, a Rekor-v2-style Ed25519 log,
and an RFC 3161 TSA (``openssl ts``), all in a test trusted root. Each tampering fails with
exit 1 and one error line naming why.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cosign_registry import attach_bundles, referrer_manifest, referrers_index
from tests.support.fixtures import unique_repo
from tests.support.registry import OCI_MANIFEST
from tests.support.signing_helpers import new_key
from tests.support.sigstore_signers import (
    OpensslTSA,
    Rekor2Log,
    current_fulcio,
    rekor2_bundle,
    tamper_b64,
    trusted_root,
    workflow_leaf,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.usefixtures("openssl_installed"),
]

IDENTITY = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"
ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = {"trigger": "push", "repository": "acme/app", "ref": "refs/tags/v1.2.0"}


def _entry(doc: dict) -> dict:
    return doc["verificationMaterial"]["tlogEntries"][0]


def _tamper_checkpoint(doc: dict) -> None:
    proof = _entry(doc)["inclusionProof"]
    note = proof["checkpoint"]["envelope"]
    head, _, sigs = note.partition("\n\n")
    origin, size, root = head.split("\n")[:3]
    proof["checkpoint"]["envelope"] = f"{origin}\n{size}\n{tamper_b64(root)}\n\n{sigs}"


def _tamper_proof(doc: dict) -> None:
    hashes = _entry(doc)["inclusionProof"]["hashes"]
    hashes[0] = tamper_b64(hashes[0])


def _tamper_predicate(doc: dict) -> None:
    """An attacker relabels a plain statement as SLSA provenance v1: the DSSE signature breaks."""
    env = doc["dsseEnvelope"]
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"] = {"buildDefinition": {"buildType": "https://evil.test/build"}}
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def _tamper_timestamp(doc: dict) -> None:
    ts = doc["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
    ts["signedTimestamp"] = tamper_b64(ts["signedTimestamp"], index=-20)


def test_rekor_v2_attestation_end_to_end(tmp_path: Path, registry, fault_proxy, run) -> None:
    fulcio, log, tsa, key = current_fulcio(), Rekor2Log(), OpensslTSA(tmp_path / "tsa"), new_key("p256")
    leaf = workflow_leaf(fulcio, key, IDENTITY, WORKFLOW)
    root = tmp_path / "trusted_root.json"
    root.write_bytes(trusted_root(fulcio, log, tsa))
    repo = unique_repo("rekor2")
    img = registry.push_image(repo, "v1", salt="rekor2")
    good = rekor2_bundle(key, leaf, img.digest, log, tsa)

    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    flags = [
        "verify", "--config", cfg, "--trusted-root", root,
        "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
        "--type", "slsaprovenance1",
        "--certificate-github-workflow-repository", "acme/app",
        "--certificate-github-workflow-trigger", "push",
        "--certificate-github-workflow-ref", "refs/tags/v1.2.0",
    ]  # fmt: skip

    def attach(doc: dict) -> None:
        attach_bundles(registry, repo, img.digest, OCI_MANIFEST, len(img.manifest), [json.dumps(doc).encode()])

    # Through the sha256-<hex> fallback tag (docker-registry 2.8 has no referrers API).
    attach(good)
    r = run(*flags)
    assert r.code == 0, r.err
    assert f"signed by {IDENTITY} (issuer {ISSUER}) (Sigstore bundle, Rekor log index 1 (inclusion proof), timestamped 20" in r.out
    assert "attestation https://slsa.dev/provenance/v1)" in r.out

    # Each tampering fails, exit 1, one error line that names the cause.
    cases: list[tuple[Callable[[dict], None] | None, list[str], str]] = [
        (_tamper_timestamp, [], "RFC 3161 timestamp"),
        (_tamper_checkpoint, [], "checkpoint does not match the inclusion proof's tree"),
        (_tamper_proof, [], "inclusion proof does not lead to the stated root hash"),
        (_tamper_predicate, [], "DSSE signature does not verify"),
        (None, ["--type", "slsaprovenance02"], "predicate type 'https://slsa.dev/provenance/v1' is not one of"),
        (None, ["--certificate-identity", IDENTITY.replace("acme", "evil")], "does not match"),
        (None, ["--certificate-github-workflow-repository", "evil/app"], "GitHub workflow repository 'acme/app'"),
    ]
    for edit, extra, why in cases:
        doc = json.loads(json.dumps(good))
        if edit is not None:
            edit(doc)
        attach(doc)
        args = list(flags)
        for i in range(0, len(extra), 2):
            args[args.index(extra[i]) + 1] = extra[i + 1]
        r = run(*args)
        assert r.code == 1, (why, r.out)
        errors = [line for line in r.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and why in errors[0], (why, r.err)

    # The same good bundle found through the OCI 1.1 referrers API (answered by the proxy).
    subject = {"mediaType": OCI_MANIFEST, "size": len(img.manifest), "digest": img.digest}
    entry = referrer_manifest(registry, repo, subject, json.dumps(good).encode())
    fault_proxy.add(
        rf"/v2/{repo}/referrers/{img.digest}$",
        "status",
        status=200,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
        body=referrers_index([entry]),
    )
    cfg.write_text(f'[container]\nimage = "{fault_proxy.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    r = run(*flags)
    assert r.code == 0, r.err
    assert fault_proxy.count("GET", f"/referrers/{img.digest}") == 1


def test_trusted_root_comes_from_tuf(tmp_path: Path, registry, run, monkeypatch) -> None:
    """No --trusted-root: the root is fetched over TUF (a private repository with its own
    root.json, as GitHub's is); when that repository is gone, one warning and the fallback."""
    from tests.support.tuf_repo import TufRepo, serve

    fulcio, log, tsa, key = current_fulcio(), Rekor2Log(), OpensslTSA(tmp_path / "tsa"), new_key("p256")
    leaf = workflow_leaf(fulcio, key, IDENTITY, WORKFLOW)
    repo = unique_repo("tuf")
    img = registry.push_image(repo, "v1", salt="tuf")
    bundle = json.dumps(rekor2_bundle(key, leaf, img.digest, log, tsa)).encode()
    attach_bundles(registry, repo, img.digest, OCI_MANIFEST, len(img.manifest), [bundle])
    tuf = TufRepo(tmp_path / "tuf-repo")
    tuf.add_target("trusted_root.json", trusted_root(fulcio, log, tsa))
    (tmp_path / "root.json").write_bytes(tuf.root_bytes())

    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    flags = ["verify", "--config", cfg, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
             "--type", "https://slsa.dev/provenance/v1"]  # fmt: skip
    monkeypatch.setenv("LOCKMAN_TUF_OFFLINE", "0")
    monkeypatch.setenv("LOCKMAN_TUF_ROOT", str(tmp_path / "root.json"))
    with serve(tuf.dir) as url:
        r = run(*flags, "--tuf-url", url)
    assert r.code == 0, r.err
    assert "warning" not in r.err

    # Repository gone: the cached copy (verified last time) is used, with one warning naming it.
    r = run(*flags, "--tuf-url", url)
    assert r.code == 0, r.err
    warnings = [line for line in r.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cannot refresh the Sigstore trusted root" in warnings[0]
    assert "using the cached trusted root" in warnings[0] and "0 days old" in warnings[0]

    # --tuf-offline: the cache, no network, no warning.
    r = run(*flags, "--tuf-url", url, "--tuf-offline")
    assert r.code == 0 and "warning" not in r.err, r.err


def test_planted_trusted_root_in_the_tuf_cache_is_refused(tmp_path: Path, registry, run, monkeypatch) -> None:
    """Someone who can write the cache (a restored CI cache, a shared LOCKMAN_CACHE_DIR) plants a
    trusted root trusting their own Fulcio CA, Rekor log and TSA, and makes ``metadata/`` a file
    so the refresh fails. Their keyless signature must not verify."""
    import shutil
    from urllib.parse import quote

    from tests.support.tuf_repo import TufRepo, serve

    genuine = current_fulcio()
    tuf = TufRepo(tmp_path / "tuf-repo")
    tuf.add_target("trusted_root.json", trusted_root(genuine, Rekor2Log(), OpensslTSA(tmp_path / "tsa")))
    (tmp_path / "root.json").write_bytes(tuf.root_bytes())
    cache = tmp_path / "lockman-cache"
    monkeypatch.setenv("LOCKMAN_CACHE_DIR", str(cache))
    monkeypatch.setenv("LOCKMAN_TUF_OFFLINE", "0")
    monkeypatch.setenv("LOCKMAN_TUF_ROOT", str(tmp_path / "root.json"))

    fulcio, log, tsa, key = current_fulcio(), Rekor2Log(), OpensslTSA(tmp_path / "evil-tsa"), new_key("p256")
    leaf = workflow_leaf(fulcio, key, IDENTITY, WORKFLOW)
    repo = unique_repo("tuf-planted")
    img = registry.push_image(repo, "v1", salt="tuf-planted")
    bundle = json.dumps(rekor2_bundle(key, leaf, img.digest, log, tsa)).encode()
    attach_bundles(registry, repo, img.digest, OCI_MANIFEST, len(img.manifest), [bundle])
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    flags = ["verify", "--config", cfg, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER,
             "--type", "https://slsa.dev/provenance/v1"]  # fmt: skip

    with serve(tuf.dir) as url:
        r = run(*flags, "--tuf-url", url)  # the genuine root does not know the attacker's CA
    assert r.code == 1, r.err
    base = cache / "tuf" / quote(url, safe="")
    assert (base / "targets" / "trusted_root.json").is_file()

    # The plant: a root trusting the attacker's CA, log and TSA; the refresh forced to fail.
    (base / "targets" / "trusted_root.json").write_bytes(trusted_root(fulcio, log, tsa))
    shutil.rmtree(base / "metadata")
    (base / "metadata").write_text("")
    for extra in ([], ["--tuf-offline"]):
        r = run(*flags, "--tuf-url", url, *extra)
        assert r.code == 1, (extra, r.out, r.err)
        assert "using the shipped trusted root" in r.err and "nothing verifiable is cached" in r.err
        assert f"signed by {IDENTITY}" not in r.out
        errors = [line for line in r.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "signature check failed" in errors[0], r.err
        assert "not verified by a trusted TSA" in errors[0]  # the shipped root knows none of theirs


def test_trusted_root_is_fetched_only_when_a_verification_reads_it(
    tmp_path: Path, registry, run, monkeypatch
) -> None:
    """``verify --key --insecure-ignore-tlog`` needs no trusted root, so it asks no TUF repository
    (it used to fetch the public-good root first, whatever the verification); a keyless check
    reads the root, so it fetches it."""
    from tests.support.cosign_registry import push_signatures
    from tests.support.signing_helpers import keyed_layer, public_pem
    from tests.support.tuf_repo import TufRepo, serve

    fulcio, log, tsa, key = current_fulcio(), Rekor2Log(), OpensslTSA(tmp_path / "tsa"), new_key("p256")
    repo = unique_repo("tuf-lazy")
    img = registry.push_image(repo, "v1", salt="tuf-lazy")
    leaf = workflow_leaf(fulcio, key, IDENTITY, WORKFLOW)
    bundle = json.dumps(rekor2_bundle(key, leaf, img.digest, log, tsa)).encode()
    attach_bundles(registry, repo, img.digest, OCI_MANIFEST, len(img.manifest), [bundle])
    signer = new_key("p256")
    push_signatures(registry, repo, img.digest, [keyed_layer(signer, img.digest, None)])
    pub = tmp_path / "signer.pub"
    pub.write_bytes(public_pem(signer))
    tuf = TufRepo(tmp_path / "tuf-repo")
    tuf.add_target("trusted_root.json", trusted_root(fulcio, log, tsa))
    (tmp_path / "root.json").write_bytes(tuf.root_bytes())
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{repo}:v1"\n')
    assert run("update", "--config", cfg).code == 0
    monkeypatch.setenv("LOCKMAN_TUF_OFFLINE", "0")
    monkeypatch.setenv("LOCKMAN_TUF_ROOT", str(tmp_path / "root.json"))

    requests: list[str] = []
    with serve(tuf.dir, requests) as url:
        r = run("verify", "--config", cfg, "--key", pub, "--insecure-ignore-tlog", "--tuf-url", url)
        assert r.code == 0, r.err
        assert requests == []
        r = run("verify", "--config", cfg, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer",
                ISSUER, "--type", "https://slsa.dev/provenance/v1", "--tuf-url", url)  # fmt: skip
        assert r.code == 0, r.err
        assert any(path.endswith("trusted_root.json") for path in requests), requests
