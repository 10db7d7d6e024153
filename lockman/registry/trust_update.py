"""Keep the Sigstore trusted root current: fetch ``trusted_root.json`` through TUF.

Sigstore rotates keys (Rekor v2 logs, TSAs, Fulcio CAs); a root shipped in the wheel goes stale.
python-tuf's ngclient does the TUF work (root rotation, signature thresholds, expiry, rollback
and freeze protection); we give it a starting ``root.json`` (the embedded one for Sigstore's
public-good repository, or the user's own for a private repository) and a cache directory.

Failure policy: when the repository cannot be reached *or serves metadata TUF refuses* (expired,
rolled back, badly signed), we fall back to the last ``trusted_root.json`` TUF verified (cached),
then to the root shipped with lockman, and say so in one warning with the copy's age. An
attacker who blocks or replays the repository thus gets the user the previous good root, never
theirs. ``offline`` skips the network and uses the same fallback without a warning.

Lives in the I/O layer and returns bytes: parsing is :mod:`lockman.signatures.trust`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from urllib.parse import quote

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


def _fallback(target_dir: Path, url: str, reason: str | None, embedded_date: str) -> FetchedRoot:
    cached = target_dir / TARGET
    if cached.is_file():
        data = cached.read_bytes()
        source = f"cached trusted root from {url} ({_age(cached)})"
    else:
        data, source = None, f"shipped trusted root ({embedded_date})"
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
) -> FetchedRoot:
    """Return the newest ``trusted_root.json`` TUF verifies, or the fallback with a warning."""
    url = url.rstrip("/")
    base = (cache_dir or default_cache_dir()) / quote(url, safe="")
    metadata_dir, target_dir = base / "metadata", base / "targets"
    if offline:
        return _fallback(target_dir, url, None, embedded_date)

    from tuf.api import exceptions as tuf_errors  # lazy: only runs that check signatures pay
    from tuf.ngclient import Updater

    try:
        metadata_dir.mkdir(parents=True, exist_ok=True)
        target_dir.mkdir(parents=True, exist_ok=True)
        updater = Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=url,
            target_dir=str(target_dir),
            target_base_url=f"{url}/targets/",
            bootstrap=bootstrap_root if bootstrap_root is not None else embedded_tuf_root(),
        )
        updater.refresh()
        info = updater.get_targetinfo(TARGET)
        if info is None:
            return _fallback(target_dir, url, f"the repository has no {TARGET}", embedded_date)
        path = updater.find_cached_target(info, str(target_dir / TARGET))
        if path is None:
            path = updater.download_target(info, str(target_dir / TARGET))
    except tuf_errors.ExpiredMetadataError as exc:
        return _fallback(target_dir, url, f"expired metadata refused: {exc}", embedded_date)
    except tuf_errors.BadVersionNumberError as exc:
        return _fallback(target_dir, url, f"rollback refused: {exc}", embedded_date)
    except tuf_errors.RepositoryError as exc:
        return _fallback(target_dir, url, f"metadata refused: {type(exc).__name__}: {exc}", embedded_date)
    except tuf_errors.DownloadError as exc:
        return _fallback(target_dir, url, f"unreachable: {type(exc).__name__}", embedded_date)
    except (OSError, ValueError) as exc:
        return _fallback(target_dir, url, f"{type(exc).__name__}: {exc}", embedded_date)
    data = Path(path).read_bytes()
    return FetchedRoot(data=data, source=f"trusted root from {url} (TUF, verified)")
