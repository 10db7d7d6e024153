"""An OCI image layout directory: ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``.

The directory may be shared (a CI cache, a mounted volume), so nothing in it is followed:
``blobs/``, ``blobs/<alg>/``, ``.lockman-partial/``, ``index.json`` and ``oci-layout`` must not
be symbolic links (checked on open and before each download), files are opened with
``O_NOFOLLOW`` and checked to be plain files, and a blob that is a link is replaced.

Only verified content ever gets a name under ``blobs/``: downloads land in ``.lockman-partial/``
(kept there after an interruption so the next run can resume) and are renamed into place once
their digest matches. ``index.json`` is replaced atomically and only after everything an image
needs is present, so a reader (``skopeo``, ``oras``, ``buildah``) never sees a dangling entry.
File I/O only; the network side lives in lockman.registry.blobs.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from lockman import safejson
from lockman.errors import InputError
from lockman.fileio import UnsafePath, is_plain_file, open_read, refuse_link, write_atomic
from lockman.model.manifest import OCI_INDEX, Descriptor, compute_digest

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
    """One layout directory; :meth:`open` creates it or checks that it is one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def open(cls, root: Path) -> OciLayout:
        layout = cls(root)
        marker = root / LAYOUT_FILE
        if root.exists() and not root.is_dir():
            raise InputError(f"{root}: not a directory")
        layout.check_links()
        if marker.exists():
            try:
                with open_read(marker) as f:
                    version = safejson.loads(f.read(4096)).get("imageLayoutVersion")
            except (ValueError, OSError, AttributeError):
                version = None
            if version != LAYOUT_VERSION:
                raise InputError(f"{marker}: not an OCI image layout {LAYOUT_VERSION} marker")
        elif root.exists() and any(p.name != PARTIAL_DIR for p in root.iterdir()):
            raise InputError(f"{root}: exists, is not empty and is not an OCI image layout")
        else:
            root.mkdir(parents=True, exist_ok=True)
            write_atomic(marker, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
        (root / "blobs").mkdir(exist_ok=True)
        return layout

    def check_links(self) -> None:
        """Refuse a layout whose parts are symbolic links: writes would land outside it."""
        for name in ("blobs", PARTIAL_DIR, "index.json", LAYOUT_FILE):
            refuse_link(self.root / name, name)
        blobs = self.root / "blobs"
        if blobs.is_dir():
            for alg in blobs.iterdir():
                refuse_link(alg, f"blobs/{alg.name}")

    def blob_path(self, digest: str) -> Path:
        alg, _, hex_ = digest.partition(":")
        return self.root / "blobs" / alg / hex_

    def partial_path(self, digest: str) -> Path:
        alg, _, hex_ = digest.partition(":")
        return self.root / PARTIAL_DIR / f"{alg}-{hex_}"

    def put_verified_bytes(self, digest: str, data: bytes) -> None:
        """Store bytes (a manifest) whose digest the caller checked; checked again here."""
        if compute_digest(data, digest.partition(":")[0]) != digest:
            raise AssertionError(f"refusing to store bytes that do not hash to {digest}")
        path = self.blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_link(path.parent, f"blobs/{path.parent.name}")
        if is_plain_file(path):
            with open_read(path) as f:
                if f.read(len(data) + 1) == data:
                    return
        write_atomic(path, data)  # replaces a link or a wrong file by name, never writes through it

    def read_index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        if not os.path.lexists(path):
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        try:
            with open_read(path) as f:
                doc = safejson.loads(f.read())
        except UnsafePath:
            raise
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
        except (ValueError, RecursionError):
            raise InputError(f"{path}: not valid JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
            raise InputError(f"{path}: not an OCI image index")
        doc.setdefault("manifests", [])
        return doc

    def set_ref(self, name: str, desc: Descriptor) -> None:
        """Point ``name`` at ``desc`` in index.json, replacing what the name pointed at."""
        doc = self.read_index()
        kept = [
            m
            for m in doc["manifests"]
            if not (isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) == name)
        ]
        kept.append(descriptor_json(desc, {REF_NAME: name}))
        kept.sort(
            key=lambda m: str((m.get("annotations") or {}).get(REF_NAME, "")) if isinstance(m, dict) else ""
        )
        doc["manifests"] = kept
        write_atomic(self.root / "index.json", (json.dumps(doc, indent=2) + "\n").encode())

    def remove_if_empty(self, *, keep_root: bool = False) -> None:
        """Remove the layout when it holds no image and no blob (only what :meth:`open` made);
        ``keep_root``: the directory itself was there before, and stays."""
        if (self.root / "index.json").exists():
            return
        for d in (self.root / "blobs" / "sha256", self.root / "blobs", self.root / PARTIAL_DIR):
            with contextlib.suppress(OSError):
                d.rmdir()  # fails, and keeps everything, when anything is inside
        if any(p.name != LAYOUT_FILE for p in self.root.iterdir()):
            return
        with contextlib.suppress(OSError):
            (self.root / LAYOUT_FILE).unlink()
            if not keep_root:
                self.root.rmdir()

    def remove_partial_dir_if_empty(self) -> None:
        with contextlib.suppress(OSError):
            (self.root / PARTIAL_DIR).rmdir()
