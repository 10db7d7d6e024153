"""`lockman verify`: the lock agrees with the config, and the registry serves exactly it.

Reads the options, calls :func:`lockman.images.verifier.verify` and renders its result: each
problem one line on stderr, the report (text, JSON, Markdown); the exit code is the worst
problem's. What is checked, offline and online, is told in lockman/images/verifier.py.
"""

from __future__ import annotations

from pathlib import Path

from lockman import report
from lockman.commands._common import CLI_HOOKS, signature_options, worst
from lockman.console import err, info, out, use_colour
from lockman.enforce.options import SignatureOptions
from lockman.images import verifier
from lockman.images.sources import load_project
from lockman.images.verifier import VerifyOptions, VerifyResult
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
) -> int:
    config = load_project(config_path)
    result = await verifier.verify(
        config,
        VerifyOptions(offline=offline, deep=deep, no_cache=no_cache),
        signatures=signature_options(signatures),
        connect=lambda cache: RegistryClient(timeout=timeout, cache=cache),
        hooks=CLI_HOOKS,
    )
    if fmt == "text":  # in JSON each image carries its signatures; stdout holds only the report
        for s in result.signed:
            for line in s.lines():
                info(line)
    for p in result.problems:
        err(f"error: {p.message}")
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
            report.VerifiedImage(e.name, e.tag, e.digest, e.source, by_image.get(e.display))
            for e in result.checked
        ),
        tuple(report.VerifyProblem(p.kind, p.image, p.message) for p in result.problems),
        signed=len(result.signed),
        blobs=result.blobs,
        blob_bytes=result.blob_bytes,
    )
