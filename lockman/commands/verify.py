"""`lockman verify`: the lock agrees with the config, and the registry serves exactly it.

Reads the options, calls :func:`lockman.images.verifier.verify` and renders its result: each
problem one line on stderr, the report (text, JSON, Markdown); the exit code is the worst
problem's. What is checked, offline and online, is told in lockman/images/verifier.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lockman import env, report
from lockman.commands._common import CLI_HOOKS, signature_options, vuln_policy, warn_unavailable, worst
from lockman.console import err, info, out, short, use_colour
from lockman.enforce.options import SignatureOptions
from lockman.images import verifier
from lockman.images.sources import load_project
from lockman.images.verifier import VerifyOptions, VerifyResult
from lockman.model.insight import Insight
from lockman.model.vulns import VulnDiff
from lockman.registry.client import RegistryClient


async def run(
    config_path: Path,
    *,
    offline: bool,
    timeout: float,
    signatures: SignatureOptions | None = None,
    deep: bool = False,
    no_cache: bool = False,
    fmt: report.Format = "text",
    report_moved: bool = False,
) -> int:
    config = load_project(config_path)
    options = VerifyOptions(
        offline=offline,
        deep=deep,
        no_cache=no_cache,
        vuln_policy=vuln_policy(config_path),
        osv_url=env.get("LOCKMAN_OSV_URL"),
        report_moved=report_moved,
    )
    result = await verifier.verify(
        config,
        options,
        signatures=signature_options(signatures, timeout),
        connect=lambda cache: RegistryClient(timeout=timeout, cache=cache),
        hooks=CLI_HOOKS,
    )
    if fmt == "text":  # in JSON each image carries its signatures; stdout holds only the report
        for s in result.signed:
            for line in s.lines():
                info(line)
    _vulnerability_notices(result)
    for p in result.problems:
        err(f"error: {p.message}")
    for m in result.moved or ():  # news, not a failure: the exit code stays the problems'
        err(
            f"warning: {m.display}: the tag moved to {short(m.tag_digest)} (locked: "
            f"{short(m.locked_digest)}); `lockman update {m.display}` records it"
        )
    rendered = report.render_verify(_report(result), fmt, colour=use_colour())
    if rendered:
        (info if fmt == "text" else out)(rendered.rstrip("\n"))
    return worst(p.exit_code for p in result.problems)


def _report(result: VerifyResult) -> report.VerifyReport:
    by_image = {s.image: s.as_dict() for s in result.signed}
    return report.VerifyReport(
        str(result.lockfile_path),
        result.offline,
        tuple(
            report.VerifiedImage(
                e.name, e.tag, e.digest, e.source, by_image.get(e.display), _vulnerabilities(result, e.key)
            )
            for e in result.checked
        ),
        tuple(report.VerifyProblem(p.kind, p.image, p.message) for p in result.problems),
        signed=len(result.signed),
        blobs=result.blobs,
        blob_bytes=result.blob_bytes,
        moved=None
        if result.moved is None
        else tuple(report.MovedTag(m.name, m.tag, m.locked_digest, m.tag_digest) for m in result.moved),
    )


def _vulnerabilities(result: VerifyResult, key: tuple[str, str]) -> dict[str, Any]:
    """The image's ``vulnerabilities`` (known ones present: ``introduced`` against nothing) when
    a ``[vulnerabilities] refuse`` policy had verify look."""
    v = result.vulnerabilities.get(key)
    if v is None:
        return {}

    def scan(v: VulnDiff) -> dict[str, Any]:
        return {
            "status": v.status,
            "platform": v.platform,
            "present": [f.as_dict() for f in v.introduced],
            "notes": list(v.notes),
            "requests": v.requests,
        }

    every = result.vulnerabilities_by_platform.get(key) or (v,)
    return {"vulnerabilities": scan(v), "vulnerabilities_by_platform": [scan(x) for x in every]}


def _vulnerability_notices(result: VerifyResult) -> None:
    """One warning when OSV could not be asked; each image without an SBOM named: not scanned."""
    warn_unavailable([Insight(vulnerabilities=v) for v in result.vulnerabilities.values()])
    for e in result.checked:
        v = result.vulnerabilities.get(e.key)
        if v is not None and v.status == "not-scanned":
            why = f" ({v.notes[0]})" if v.notes else ""
            err(f"notice: {e.display}: not scanned for known vulnerabilities{why}")
