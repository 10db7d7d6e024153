"""`lockman pull`: fetch exactly the locked images, every byte checked.

Two destinations. ``--oci-layout DIR`` writes an OCI image layout (each blob streamed, hashed,
renamed into place only on a digest match; present valid blobs skipped; interrupted downloads
resumed). Otherwise the images go to docker or podman: lockman verifies the manifests and the
signature policy, then runs ``<engine> pull name@sha256:…`` and prints that command, then tags
the image ``name:tag`` once the engine confirms it holds the locked digest (images.runtime).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lockman.commands._common import report_errors, signature_options
from lockman.console import count, err, info, short
from lockman.enforce.gate import SignatureGate
from lockman.enforce.options import SignatureOptions
from lockman.errors import EXIT_OK, InputError, LockmanError, RegistryError, VerificationError, about
from lockman.images import runtime
from lockman.images.graph import ImageGraph, config_platform, locked_content, walk
from lockman.images.locker import pin_mismatches, wanted_images
from lockman.images.oci_layout import OciLayout
from lockman.images.sources import load_project
from lockman.model import lockfile, reference
from lockman.model.lockfile import LockedImage
from lockman.model.manifest import Descriptor, Platform
from lockman.model.oci_convert import ORIGINAL, oci_view
from lockman.model.platforms import matches, parse_platform
from lockman.model.reference import Reference
from lockman.registry.blobs import BLOB_CONCURRENCY, download_blob, read_blob
from lockman.registry.cache import ManifestCache
from lockman.registry.client import RegistryClient

log = logging.getLogger(__name__)


def entry_reference(entry: LockedImage) -> Reference:
    """The locked entry as a reference carrying its locked digest."""
    text = f"{entry.name}:{entry.tag}" if entry.tag else entry.name
    return reference.parse(text, default_tag=None).with_digest(entry.digest)


def select_entries(lock: lockfile.Lockfile, names: list[str], lock_path: Path) -> list[LockedImage]:
    """All entries, or those the user named (as written in the lock, or any equivalent name)."""
    entries = list(lock.sorted().images)
    if not names:
        return entries
    chosen: list[LockedImage] = []
    for name in names:
        found = [e for e in entries if name in (e.display, e.name)]
        if not found:
            wanted = reference.parse(name, default_tag=None)
            for e in entries:
                r = entry_reference(e)
                if r.name == wanted.name and wanted.tag in (None, r.tag):
                    found.append(e)
        if not found:
            raise InputError(f"{name}: not in {lock_path} (run `lockman update` after adding it)")
        chosen.extend(e for e in found if e not in chosen)
    return chosen


CONFIG_LIMIT = 4 << 20  # an image config is a few KiB; a larger one is not read (nor trusted)


@dataclass
class _Run:
    client: RegistryClient
    layout: OciLayout
    limit: asyncio.Semaphore
    downloads: dict[str, asyncio.Task[tuple[int, bool]]]
    gate: SignatureGate
    refs: dict[str, Descriptor]  # written to index.json together, once every image is in place
    annotations: dict[str, dict[str, str]]  # more for an entry: the original of a conversion


async def _blob(run: _Run, ref: Reference, desc: Descriptor, what: str) -> tuple[int, bool]:
    """(bytes fetched, was already present); one task per digest per run."""
    if await asyncio.to_thread(run.layout.has_blob, desc):  # other blobs stream meanwhile
        return 0, True
    run.layout.discard_blob(desc.digest)  # present but wrong (or a link): never left under its name
    async with run.limit:
        run.layout.check_unchanged()  # the directory may have changed since the run began
        files = run.layout.blob_files(desc.digest)
        with locked_content():
            fetched = await download_blob(run.client, ref, desc, files, what=what)
    return fetched, False


async def _pull_to_layout(run: _Run, entry: LockedImage, platform: Platform | None) -> str:
    ref = entry_reference(entry)
    what = entry.display
    graph = await walk(run.client, ref, entry.digest, what=f"{what}@{entry.digest}", platform=platform)
    await run.gate.check(run.client, ref, entry)

    def start(digest: str, role: str, desc: Descriptor) -> asyncio.Task[tuple[int, bool]]:
        task = run.downloads.get(digest)
        if task is None:
            task = asyncio.ensure_future(_blob(run, ref, desc, f"{what} ({role} {short(digest)})"))
            run.downloads[digest] = task
        return task

    single = graph.single_manifest
    if platform is not None and single is not None and single.config is not None:
        # A single-platform image: its config says which platform; check before any layer.
        await start(single.config.digest, "config", single.config)
        _check_single_platform(run, graph, platform, what)
    tasks = [start(digest, role, desc) for digest, (role, desc) in graph.blobs.items()]
    results = await asyncio.gather(*tasks)
    for m in graph.manifests:
        run.layout.put_verified_bytes(m.digest, m.raw)
    # Docker-format manifests: index.json names their OCI conversion (which skopeo, podman and
    # umoci open by name) and records the locked original, whose bytes stay in blobs/.
    view = oci_view(graph.top, graph.manifests)
    for digest, data in view.blobs.items():
        run.layout.put_verified_bytes(digest, data)
    run.refs[what] = view.top
    if view.converted:
        run.annotations[what] = {ORIGINAL: view.original.digest}
    fetched = sum(n for n, _ in results)
    present = sum(1 for _, p in results if p)
    return (
        f"{what}  {short(graph.top.digest)}  {count(len(graph.manifests), 'manifest')}, "
        f"{count(len(results), 'blob')} "
        f"({present} already present, {_mb(fetched)} fetched)"
    )


def _check_single_platform(run: _Run, graph: ImageGraph, platform: Platform | None, what: str) -> None:
    """--platform with a single-platform image: see :func:`_fits`."""
    m = graph.single_manifest
    if platform is None or m is None or m.config is None:
        return
    _fits(platform, config_platform(run.layout.read_blob(m.config.digest, CONFIG_LIMIT)), what, graph)


def _fits(platform: Platform, declared: Platform | None, what: str, graph: ImageGraph) -> bool:
    """Whether a single-platform image is for ``platform``; one built for another is pulled as
    it is (it is what the lock pins) with one warning, as ``update --platform`` locks it."""
    if matches(platform, declared):
        return True
    log.warning(
        "%s: single-platform %s image, no %s variant; taken as it is (%s)",
        what,
        declared or "unknown-platform",
        platform,
        short(graph.top.digest),
    )
    return False


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


async def _verify_for_engine(
    client: RegistryClient, entry: LockedImage, platform: Platform | None, gate: SignatureGate
) -> bool:
    """Every manifest the engine will read, fetched by digest and hashed; then the policy.
    True when the engine is to be given ``--platform`` (False: a single-platform image built
    for another platform, pulled as it is, as into a layout)."""
    ref = entry_reference(entry)
    graph = await walk(client, ref, entry.digest, what=f"{entry.display}@{entry.digest}", platform=platform)
    await gate.check(client, ref, entry)
    m = graph.single_manifest
    if platform is None or m is None or m.config is None:
        return True
    with locked_content():
        config = await read_blob(client, ref, m.config, what=f"{entry.display} (config)", limit=CONFIG_LIMIT)
    return _fits(platform, config_platform(config), entry.display, graph)


async def run(
    config_path: Path,
    images: list[str],
    *,
    oci_layout: Path | None,
    platform: str | None,
    runtime_name: str | None,
    no_cache: bool,
    timeout: float,
    signatures: SignatureOptions | None = None,
) -> int:
    config = load_project(config_path)
    gate = SignatureGate.open(config.path, signature_options(signatures, timeout))
    lock = lockfile.read(config.lockfile_path)
    if lock is None:
        raise InputError(f"{config.lockfile_path}: no lockfile; run `lockman update`")
    if oci_layout is not None and runtime_name is not None:
        raise InputError("--oci-layout and --runtime are alternatives: give one")
    with about("--platform"):
        wanted_platform = parse_platform(platform) if platform else None
    entries = select_entries(lock, images, config.lockfile_path)
    # An entry xcargo.toml pins differently (a hand-edited pin, or an `update --repin` killed
    # between writing xcargo.toml and xcargo.lock) is not what xcargo will run: refuse it.
    shown = {e.display for e in entries}
    mismatched = pin_mismatches(wanted_images(config.images, config.path), lock, config.path)
    if torn := [VerificationError(m) for image, m in mismatched if image in shown]:
        return report_errors(torn)
    cache = None if no_cache else ManifestCache()
    if oci_layout is not None:
        return await _run_layout(gate, entries, oci_layout, wanted_platform, cache, timeout)
    source = "--runtime" if runtime_name else f"{config.path}: container.runtime"
    engine, exe = runtime.choose(runtime_name or config.runtime, source=source)
    async with RegistryClient(timeout=timeout, cache=cache) as client:
        await client.prefetch_tokens([entry_reference(e) for e in entries])
        results = await asyncio.gather(
            *(_verify_for_engine(client, e, wanted_platform, gate) for e in entries),
            return_exceptions=True,
        )
        # What lockman was allowed for each registry, the engine is told too (podman), or
        # the failure says what the engine needs (docker's daemon.json).
        hosts = {entry_reference(e).api_host for e in entries}
        plain_ok = {h for h in hosts if client.plain_http_ok(h)}
        insecure = {h for h in hosts if client.is_insecure(h)}
    errors = _errors(results, entries)
    if errors:
        return report_errors(errors)  # nothing is handed to the engine unless all verified
    for e, fits in zip(entries, results, strict=True):
        ref = entry_reference(e)
        argv = runtime.pull_command(
            engine, ref.name, e.digest, platform if fits else None, tls_verify=ref.api_host not in plain_ok
        )
        info("+ " + shlex.join(argv))
        try:
            code = subprocess.run([exe, *argv[1:]], check=False, stdin=subprocess.DEVNULL).returncode
        except OSError as exc:
            raise RegistryError(f"{engine}: cannot run: {exc.strerror or exc}") from None
        if code != 0:
            hint = runtime.insecure_hint(engine, ref.registry) if ref.api_host in insecure else ""
            raise RegistryError(f"{shlex.join(argv)}: {engine} exited with status {code}{hint}")
        info(runtime.tag_confirmed(engine, exe, ref.name, e.digest, e.tag or None))
    return EXIT_OK


def _errors(results: Sequence[object], entries: list[LockedImage]) -> list[LockmanError]:
    """One error per failed image, naming it; the same message twice is said once."""
    errors: dict[str, LockmanError] = {}
    for r, entry in zip(results, entries, strict=True):
        if isinstance(r, LockmanError):
            e = r.with_subject(entry.display)
            errors.setdefault(str(e), e)
        elif isinstance(r, BaseException):
            raise r
    return list(errors.values())


async def _run_layout(
    gate: SignatureGate,
    entries: list[LockedImage],
    directory: Path,
    platform: Platform | None,
    cache: ManifestCache | None,
    timeout: float,
) -> int:
    created = not directory.exists()
    was_empty = created or (directory.is_dir() and not any(directory.iterdir()))
    with OciLayout.open(directory) as layout, lockfile.locked(directory / "index.json"):
        # one writer per layout at a time
        before = layout.blob_names()
        async with RegistryClient(timeout=timeout, cache=cache) as client:
            await client.prefetch_tokens([entry_reference(e) for e in entries])
            state = _Run(client, layout, asyncio.Semaphore(BLOB_CONCURRENCY), {}, gate, {}, {})
            results = await asyncio.gather(
                *(_pull_to_layout(state, e, platform) for e in entries), return_exceptions=True
            )
            # Downloads an image abandoned on its first error still finish (or fail) cleanly.
            await asyncio.gather(*state.downloads.values(), return_exceptions=True)
        errors = _errors(list(results), entries)
        if not errors:
            # every image at once: complete for all, or unchanged
            layout.set_refs(state.refs, state.annotations)
        else:  # the layout as it was: index.json untouched, the blobs this run added removed
            layout.remove_blobs_except(before)
        layout.remove_partial_dir_if_empty()
        if was_empty:  # a failed first pull leaves no empty skeleton behind
            layout.remove_if_empty(keep_root=not created)
    if errors:
        code = report_errors(errors)  # then one line saying the layout is as it was
        failed = sum(isinstance(r, BaseException) for r in results)
        err(f"{directory}: left as it was ({failed} of {count(len(entries), 'image')} failed)")
        return code
    for r in results:
        if isinstance(r, str):
            info(r)
    info(f"{directory}: {count(len(entries), 'image')} written (oci:{directory}:NAME)")
    return EXIT_OK
