"""Keep the Sigstore trusted root current: fetch ``trusted_root.json`` through TUF.

Sigstore rotates keys (Rekor v2 logs, TSAs, Fulcio CAs); a root shipped in the wheel goes stale.
python-tuf's ngclient does the TUF work (root rotation, signature thresholds, expiry, rollback
and freeze protection); we give it a starting ``root.json`` (the embedded one for Sigstore's
public-good repository, or the user's own for a private repository), a cache directory, and a
fetcher on lockman's own transport (proxy, CAs, timeouts, caps: :mod:`lockman.registry.tuf_fetcher`).

Failure policy: when the repository cannot be reached *or serves metadata TUF refuses* (expired,
rolled back, badly signed), we fall back to the cached ``trusted_root.json`` if TUF verifies it
again from the cached metadata alone (signatures from the starting root, versions, expiry, the
target's signed hashes), else to the root shipped with lockman, and say so in one warning with
the copy's age. The cache is never trusted as found: whoever can write it (a CI cache restored
from another job, a shared ``LOCKMAN_CACHE_DIR``) can only hand back what the repository signed.
An attacker who blocks or replays the repository thus gets the user a previous good root, never
theirs. ``offline`` skips the network and uses the same fallback, silently unless a cached copy
had to be passed over. (sigstore-python fails when the refresh fails and, offline, reads the
cached file unverified; we keep lockman's fallback, but only to what TUF or the wheel vouches for.)

Lives in the I/O layer and returns bytes: parsing is :mod:`lockman.signatures.trust`'s job.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from tuf.api import exceptions as tuf_errors  # this module is imported only by runs that check signatures
from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from lockman.errors import InputError
from lockman.fileio import open_read
from lockman.registry.client import DEFAULT_TIMEOUT
from lockman.registry.tuf_fetcher import TransportFetcher

if TYPE_CHECKING:
    from tuf.api.metadata import TargetFile

DEFAULT_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
TARGET = "trusted_root.json"


@dataclass(frozen=True)
class FetchedRoot:
    """``data`` None means: use the root shipped with lockman."""

    data: bytes | None
    source: str
    warning: str | None = None


def default_cache_dir() -> Path:
    """``tuf/`` in lockman's cache directory (``$LOCKMAN_CACHE_DIR`` or the user cache)."""
    from lockman.registry.cache import default_cache_dir as lockman_cache

    return lockman_cache() / "tuf"


def embedded_tuf_root() -> bytes:
    """Sigstore public-good TUF ``root.json`` (v15, from sigstore-python, Apache-2.0)."""
    return resources.files("lockman.registry").joinpath("data/sigstore-tuf-root.json").read_bytes()


def _age(path: Path) -> str:
    when = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    days = (datetime.now(UTC) - when).days
    return f"{when.date().isoformat()}, {days} day{'s' if days != 1 else ''} old"


def _verified_bytes(info: TargetFile, path: Path) -> bytes:
    """The target's bytes, read once (no link, no FIFO) and checked against its signed length and hashes.

    Checking the very bytes we return leaves no window for a cache writer to swap the file
    between a check and the read.
    """
    with open_read(path) as f:
        data = f.read(info.length + 1)
    info.verify_length_and_hashes(data)
    return data


class _CacheFetcher(FetcherInterface):
    """Serves the cached metadata as if it were the repository, so TUF verifies it like a download.

    python-tuf has no offline mode (theupdateframework/python-tuf#2359); a fetcher is its
    extension point for where metadata comes from. Root versions come from ``root_history/``,
    other roles from their unversioned cached file; a missing file answers 404.
    """

    def __init__(self, metadata_dir: Path) -> None:
        self.dir = metadata_dir

    def _fetch(self, url: str) -> Iterator[bytes]:
        name = url.rpartition("/")[2]  # still URL-quoted, as python-tuf names its cache files
        version, _, rest = name.partition(".")
        if rest == "root.json" and version.isdigit():
            path = self.dir / "root_history" / name
        else:
            path = self.dir / (rest if version.isdigit() else name)
        try:
            with open_read(path) as f:
                data = f.read()
        except (OSError, InputError):
            raise DownloadHTTPError(f"{name} is not in the cache", 404) from None
        return iter((data,))


def _from_cache(base: Path, url: str, bootstrap: bytes) -> tuple[bytes, str] | str:
    """``trusted_root.json`` from the cache as TUF verifies it there, or why not.

    The cached metadata is re-verified from the starting root (signatures, thresholds, versions,
    expiry) in a scratch directory, and the cached target against its signed hashes: a cache
    anyone else can write (a restored CI cache, a shared ``LOCKMAN_CACHE_DIR``) can only hand
    back what the repository signed, never a planted root.
    """
    target = base / "targets" / TARGET
    with tempfile.TemporaryDirectory(prefix="lockman-tuf-") as scratch:
        try:
            updater = Updater(
                metadata_dir=scratch,
                metadata_base_url="cache:/",
                fetcher=_CacheFetcher(base / "metadata"),
                bootstrap=bootstrap,
            )
            info = updater.get_targetinfo(TARGET)
            if info is None:
                return f"the cached metadata lists no {TARGET}"
            data = _verified_bytes(info, target)
        except tuf_errors.DownloadError:
            return "nothing verifiable is cached"
        except tuf_errors.RepositoryError as exc:
            return f"the cached copy does not verify: {type(exc).__name__}: {exc}"
        except (OSError, InputError) as exc:
            return f"the cached copy cannot be read: {exc}"
    return data, f"cached trusted root from {url} ({_age(target)}, TUF-verified)"


def _fallback(base: Path, url: str, bootstrap: bytes, reason: str | None, embedded_date: str) -> FetchedRoot:
    """The cached copy TUF still verifies, else the shipped root; one warning line when
    ``reason`` (why the refresh failed) is given, or when a cached copy had to be passed over."""
    cached = _from_cache(base, url, bootstrap)
    if isinstance(cached, tuple):
        data, source = cached
    else:
        data, source = None, f"shipped trusted root ({embedded_date})"
        planted = base / "targets" / TARGET
        if reason is None and (planted.exists() or planted.is_symlink()):
            reason = "offline"
        if reason is not None:
            reason = f"{reason}; cache: {cached}"
    warning = None
    if reason is not None:
        warning = (
            f"warning: cannot refresh the Sigstore trusted root from {url} ({reason}); using the {source}"
        )
    return FetchedRoot(data=data, source=source, warning=warning)


def fetch_trusted_root(
    url: str = DEFAULT_TUF_URL,
    *,
    cache_dir: Path | None = None,
    bootstrap_root: bytes | None = None,
    offline: bool = False,
    embedded_date: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> FetchedRoot:
    """Return the newest ``trusted_root.json`` TUF verifies, or the fallback with a warning.

    Downloads go over lockman's transport (:mod:`lockman.registry.tuf_fetcher`): the proxy, CA
    and ``certs.d`` settings that registries get, ``timeout`` per read, capped bodies."""
    url = url.rstrip("/")
    base = (cache_dir or default_cache_dir()) / quote(url, safe="")
    metadata_dir, target_dir = base / "metadata", base / "targets"
    bootstrap = bootstrap_root if bootstrap_root is not None else embedded_tuf_root()
    if offline:
        return _fallback(base, url, bootstrap, None, embedded_date)

    try:
        metadata_dir.mkdir(parents=True, exist_ok=True)
        target_dir.mkdir(parents=True, exist_ok=True)
        with TransportFetcher(timeout=timeout) as fetcher:  # lockman's proxy, CA, timeouts, caps
            updater = Updater(
                metadata_dir=str(metadata_dir),
                metadata_base_url=url,
                target_dir=str(target_dir),
                target_base_url=f"{url}/targets/",
                fetcher=fetcher,
                bootstrap=bootstrap,
            )
            updater.refresh()
            info = updater.get_targetinfo(TARGET)
            if info is None:
                return _fallback(base, url, bootstrap, f"the repository has no {TARGET}", embedded_date)
            path = updater.find_cached_target(info, str(target_dir / TARGET))
            if path is None:
                path = updater.download_target(info, str(target_dir / TARGET))
        data = _verified_bytes(info, Path(path))
    except tuf_errors.ExpiredMetadataError as exc:
        return _fallback(base, url, bootstrap, f"expired metadata refused: {exc}", embedded_date)
    except tuf_errors.BadVersionNumberError as exc:
        return _fallback(base, url, bootstrap, f"rollback refused: {exc}", embedded_date)
    except tuf_errors.RepositoryError as exc:
        why = f"metadata refused: {type(exc).__name__}: {exc}"
        return _fallback(base, url, bootstrap, why, embedded_date)
    except tuf_errors.DownloadLengthMismatchError as exc:  # python-tuf's length limit, or lockman's cap
        return _fallback(base, url, bootstrap, f"too large: {type(exc).__name__}: {exc}", embedded_date)
    except tuf_errors.DownloadError as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc  # python-tuf wraps the fetcher's
        why = f"unreachable: {type(cause).__name__}: {cause}"
        return _fallback(base, url, bootstrap, why, embedded_date)
    except (OSError, ValueError, InputError) as exc:
        return _fallback(base, url, bootstrap, f"{type(exc).__name__}: {exc}", embedded_date)
    return FetchedRoot(data=data, source=f"trusted root from {url} (TUF, verified)")
