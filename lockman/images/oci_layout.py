"""An OCI image layout directory: ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``.

The directory may be shared (a CI cache, a mounted volume), so nothing in it is followed.
The layout directory and its parts (``blobs/``, ``blobs/<alg>/``, ``.lockman-partial/``) are
held open as directories (:class:`lockman.fileio.SafeDir`) and every file is opened, renamed or
removed relative to them, one name at a time, without following a link: a part that is a link
is refused on open, a part swapped for a link or another directory later cannot redirect a
write (it lands in the directory opened at the start), and the swap is noticed before each
download and before ``index.json`` is written. Files are opened with ``O_NOFOLLOW`` and checked
to be plain files; a blob that is a link is replaced.

Only verified content ever gets a name under ``blobs/``: downloads land in ``.lockman-partial/``
(kept there after an interruption so the next run can resume) and are renamed into place once
their digest matches. ``index.json`` is replaced atomically and only after everything an image
needs is present, so a reader (``skopeo``, ``oras``, ``buildah``) never sees a dangling entry.
An image whose manifests are Docker-format is named by its OCI conversion
(:mod:`lockman.model.oci_convert`), which readers look up by name; the original is kept beside it.
File I/O only; the network side lives in lockman.registry.blobs.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from lockman import safejson
from lockman.errors import InputError
from lockman.fileio import SafeDir, UnsafePath
from lockman.model.digest import Digest
from lockman.model.manifest import OCI_INDEX, Descriptor
from lockman.registry.blobs import BlobFiles, file_matches

LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"
PARTIAL_DIR = ".lockman-partial"


def descriptor_json(desc: Descriptor, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
    if desc.platform is not None:
        p: dict[str, str] = {"architecture": desc.platform.architecture, "os": desc.platform.os}
        if desc.platform.variant:
            p["variant"] = desc.platform.variant
        out["platform"] = p
    if desc.artifact_type:
        out["artifactType"] = desc.artifact_type
    if annotations:
        out["annotations"] = dict(sorted(annotations.items()))
    return out


class OciLayout:
    """One layout directory, held open; :meth:`open` creates it or checks that it is one."""

    def __init__(self, root: Path, top: SafeDir, blobs: SafeDir) -> None:
        self.root, self._top, self._blobs = root, top, blobs
        self._algs: dict[str, SafeDir] = {}
        self._partial: SafeDir | None = None
        self._opening = threading.Lock()  # has_blob runs on worker threads

    @classmethod
    def open(cls, root: Path) -> OciLayout:
        if root.exists() and not root.is_dir():
            raise InputError(f"{root}: not a directory")
        root.mkdir(parents=True, exist_ok=True)
        top = SafeDir.open(root)
        try:
            for name in ("blobs", PARTIAL_DIR, "index.json", LAYOUT_FILE):
                if top.is_link(name):
                    raise UnsafePath(f"{top.at(name)}: {name} is a symbolic link; refusing to use it")
            if top.lexists(LAYOUT_FILE):
                try:
                    with top.open_read(LAYOUT_FILE) as f:
                        version = safejson.loads(f.read(4096)).get("imageLayoutVersion")
                except (ValueError, OSError, AttributeError):
                    version = None
                if version != LAYOUT_VERSION:
                    marker = top.at(LAYOUT_FILE)
                    raise InputError(f"{marker}: not an OCI image layout {LAYOUT_VERSION} marker")
            elif any(name != PARTIAL_DIR for name in top.names()):
                raise InputError(f"{root}: exists, is not empty and is not an OCI image layout")
            else:
                top.write_atomic(LAYOUT_FILE, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
            blobs = top.subdir("blobs", create=True, what="blobs")
        except BaseException:
            top.close()
            raise
        layout = cls(root, top, blobs)
        try:
            for alg in blobs.names():
                if blobs.is_link(alg):
                    raise UnsafePath(f"{blobs.at(alg)}: blobs/{alg} is a symbolic link; refusing to use it")
        except BaseException:
            layout.close()
            raise
        return layout

    def close(self) -> None:
        for d in (*self._algs.values(), self._partial, self._blobs, self._top):
            if d is not None:
                d.close()

    def __enter__(self) -> OciLayout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _alg_dir(self, alg: str) -> SafeDir:
        with self._opening:
            d = self._algs.get(alg)
            if d is None:
                d = self._algs[alg] = self._blobs.subdir(alg, create=True, what=f"blobs/{alg}")
            return d

    def _partial_dir(self) -> SafeDir:
        with self._opening:
            if self._partial is None:
                self._partial = self._top.subdir(PARTIAL_DIR, create=True, what=PARTIAL_DIR)
            return self._partial

    def check_unchanged(self) -> None:
        """Refuse to go on when a part of the layout was replaced (by a link, or another
        directory) since it was opened: what lockman writes would not be where readers look."""
        parts: list[tuple[str, SafeDir, SafeDir, str]] = [("blobs", self._blobs, self._top, "blobs")]
        if self._partial is not None:
            parts.append((PARTIAL_DIR, self._partial, self._top, PARTIAL_DIR))
        parts += [(f"blobs/{alg}", d, self._blobs, alg) for alg, d in self._algs.items()]
        for what, d, parent, name in parts:
            if not d.still_at(parent, name):
                raise UnsafePath(f"{parent.at(name)}: {what} was replaced during the run; refusing to use it")

    def blob_files(self, digest: str) -> BlobFiles:
        """Where ``digest`` is downloaded to (``.lockman-partial/``) and named once verified."""
        dg = Digest.parse(digest)
        alg, hex_ = dg.algorithm, dg.hex
        return BlobFiles(self._partial_dir(), f"{alg}-{hex_}", self._alg_dir(alg), hex_)

    def has_blob(self, desc: Descriptor) -> bool:
        """Whether the blob is there under its name, a plain file with exactly its bytes."""
        dg = Digest.parse(desc.digest)
        alg, hex_ = dg.algorithm, dg.hex
        return file_matches(self._alg_dir(alg), hex_, desc)

    def discard_blob(self, digest: str) -> None:
        """Remove whatever is under ``digest``'s name (a wrong file, a link: never followed)."""
        dg = Digest.parse(digest)
        alg, hex_ = dg.algorithm, dg.hex
        self._alg_dir(alg).unlink(hex_)

    def read_blob(self, digest: str, limit: int) -> bytes:
        """A (verified, small) blob's bytes; at most ``limit`` + 1 are read."""
        dg = Digest.parse(digest)
        alg, hex_ = dg.algorithm, dg.hex
        with self._alg_dir(alg).open_read(hex_) as f:
            return f.read(limit + 1)

    def put_verified_bytes(self, digest: str, data: bytes) -> None:
        """Store bytes (a manifest) whose digest the caller checked; checked again here."""
        dg = Digest.parse(digest)
        if not dg.verify(data):
            raise AssertionError(f"refusing to store bytes that do not hash to {digest}")
        alg, hex_ = dg.algorithm, dg.hex
        d = self._alg_dir(alg)
        if d.plain_file_size(hex_) == len(data):
            with d.open_read(hex_) as f:
                if f.read(len(data) + 1) == data:
                    return
        d.write_atomic(hex_, data)  # replaces a link or a wrong file by name, never writes through it

    def read_index(self) -> dict[str, Any]:
        path = self._top.at("index.json")
        if not self._top.lexists("index.json"):
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        try:
            with self._top.open_read("index.json") as f:
                doc = safejson.loads(f.read())
        except OSError as e:  # a link or FIFO is UnsafePath (an InputError), raised as it is
            raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
        except (ValueError, RecursionError):
            raise InputError(f"{path}: not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise InputError(f"{path}: not an OCI image index")
        doc.setdefault("manifests", [])
        return doc

    def set_ref(self, name: str, desc: Descriptor) -> None:
        """Point ``name`` at ``desc`` in index.json, replacing what the name pointed at."""
        self.set_refs({name: desc})

    def set_refs(
        self, refs: dict[str, Descriptor], annotations: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Point each name at its descriptor in index.json, in one atomic replacement: a run
        that pulls several images makes them all visible together, or none. ``annotations``:
        more for a name's entry (e.g. the Docker original an OCI conversion was made from)."""
        self.check_unchanged()  # the blobs just stored must be where index.json readers look
        doc = self.read_index()
        kept = [
            m
            for m in doc["manifests"]
            if not (isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) in refs)
        ]
        extra = annotations or {}
        kept += [descriptor_json(d, {**extra.get(name, {}), REF_NAME: name}) for name, d in refs.items()]
        kept.sort(
            key=lambda m: str((m.get("annotations") or {}).get(REF_NAME, "")) if isinstance(m, dict) else ""
        )
        doc["manifests"] = kept
        self._top.write_atomic("index.json", (json.dumps(doc, indent=2) + "\n").encode())

    def blob_names(self) -> set[tuple[str, str]]:
        """Every ``(alg, hex)`` name under ``blobs/`` now (what a failed run restores to)."""
        out: set[tuple[str, str]] = set()
        for alg in self._blobs.names():
            try:
                out |= {(alg, name) for name in self._alg_dir(alg).names()}
            except (InputError, OSError):  # not a directory of blobs: not lockman's to touch
                continue
        return out

    def remove_blobs_except(self, keep: set[tuple[str, str]]) -> None:
        """Remove every blob not in ``keep``: those a failed run added, which no index.json
        references (its index.json was not written), so the layout is as it was before."""
        for alg, name in self.blob_names() - keep:
            self._alg_dir(alg).unlink(name)

    def remove_if_empty(self, *, keep_root: bool = False) -> None:
        """Remove the layout when it holds no image and no blob (only what :meth:`open` made);
        ``keep_root``: the directory itself was there before, and stays. Resumable downloads
        in ``.lockman-partial/`` stay (with the directory) for the next run; without
        ``oci-layout`` no reader takes what is left for a layout."""
        if self._top.lexists("index.json"):
            return
        for alg in list(self._algs):
            self._blobs.rmdir(alg)  # fails, and keeps everything, when anything is inside
        self._blobs.rmdir("sha256")
        self._top.rmdir("blobs")
        self._top.rmdir(PARTIAL_DIR)
        if any(name not in (LAYOUT_FILE, PARTIAL_DIR) for name in self._top.names()):
            return
        self._top.unlink(LAYOUT_FILE)
        if not keep_root:
            with contextlib.suppress(OSError):
                self.root.rmdir()

    def remove_partial_dir_if_empty(self) -> None:
        self._top.rmdir(PARTIAL_DIR)
