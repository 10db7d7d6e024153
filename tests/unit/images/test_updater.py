"""The updater as a library call: what ``update()`` returns, and what it wrote, for each case.

Against the scripted fake registry (tests/support/fake_registry.py); no command, no output
parsed: each test asserts on the :class:`UpdateResult` and on the files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lockman.errors import InputError, RegistryError
from lockman.images.hooks import Connect, Hooks
from lockman.images.updater import UpdateOptions, UpdateResult, update
from lockman.model import lockfile
from lockman.model.xcargo import load_config
from lockman.registry.retry import RetryPolicy
from tests.support.fake_registry import FakeRegistry

HOST = "registry.test"


def _connect(fake: FakeRegistry) -> Connect:
    return lambda cache: fake.client(cache=cache, retry=RetryPolicy(attempts=1))


TRIPLES = ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")


def _project(tmp_path: Path, *images: str) -> Path:
    cfg = tmp_path / "xcargo.toml"
    lines = [f'[targets."{t}".container]\nimage = "{i}"\n' for t, i in zip(TRIPLES, images, strict=False)]
    cfg.write_text("\n".join(lines))
    return cfg


def _update(
    cfg: Path, fake: FakeRegistry, options: UpdateOptions | None = None, hooks: Hooks | None = None
) -> UpdateResult:
    run = update(load_config(cfg), options or UpdateOptions(), connect=_connect(fake), hooks=hooks or Hooks())
    return asyncio.run(run)


def _digests(result_lock: lockfile.Lockfile | None) -> dict[tuple[str, str], str]:
    assert result_lock is not None
    return {e.key: e.digest for e in result_lock.images}


@pytest.fixture
def fake(isolated_env: Path) -> FakeRegistry:
    return FakeRegistry()


def test_a_first_run_plans_the_lock_and_writes_it(tmp_path: Path, fake: FakeRegistry) -> None:
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1")
    result = _update(cfg, fake)
    assert result.old is None and _digests(result.new) == {(f"{HOST}/app", "v1"): d1}
    assert result.lock_changes and not result.config_changes and not result.errors
    assert result.written == (tmp_path / "xcargo.lock",)
    assert lockfile.read(tmp_path / "xcargo.lock") == result.new


def test_nothing_moved_writes_nothing_and_says_so(tmp_path: Path, fake: FakeRegistry) -> None:
    fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1")
    _update(cfg, fake)
    lock = tmp_path / "xcargo.lock"
    before = lock.stat().st_mtime_ns
    result = _update(cfg, fake)
    assert not result.changed and result.written == ()
    assert result.new == result.old
    assert lock.stat().st_mtime_ns == before


def test_a_moved_tag_is_a_change_from_the_old_digest_to_the_new(tmp_path: Path, fake: FakeRegistry) -> None:
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1")
    _update(cfg, fake)
    d2 = fake.put_image(HOST, "app", "v1", layer=b"new layer")
    result = _update(cfg, fake)
    key = (f"{HOST}/app", "v1")
    assert _digests(result.old)[key] == d1 and _digests(result.new)[key] == d2
    assert result.written == (tmp_path / "xcargo.lock",)
    assert d2 in (tmp_path / "xcargo.lock").read_text()


def test_write_off_plans_the_change_and_leaves_the_lock_alone(tmp_path: Path, fake: FakeRegistry) -> None:
    """What --check and --dry-run build on: the change is in the result, not on disk."""
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1")
    _update(cfg, fake)
    text = (tmp_path / "xcargo.lock").read_text()
    d2 = fake.put_image(HOST, "app", "v1", layer=b"new layer")
    result = _update(cfg, fake, UpdateOptions(write=False))
    assert result.lock_changes and result.written == ()
    assert _digests(result.new)[(f"{HOST}/app", "v1")] == d2
    assert (tmp_path / "xcargo.lock").read_text() == text and d1 in text


def test_a_pin_whose_tag_moved_is_kept_and_reported(tmp_path: Path, fake: FakeRegistry) -> None:
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1@{d1}")
    _update(cfg, fake)
    d2 = fake.put_image(HOST, "app", "v1", layer=b"new layer")
    result = _update(cfg, fake)
    assert [o.tag_moved_to for o in result.kept_pins] == [d2]
    assert _digests(result.new)[(f"{HOST}/app", "v1")] == d1
    assert not result.changed and result.config_text is None


def test_repin_moves_the_pin_in_config_and_lock_together(tmp_path: Path, fake: FakeRegistry) -> None:
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1@{d1}")
    _update(cfg, fake)
    d2 = fake.put_image(HOST, "app", "v1", layer=b"new layer")
    planned = _update(cfg, fake, UpdateOptions(repin=True, write=False))
    assert planned.config_changes and planned.written == () and d1 in cfg.read_text()
    assert planned.new_config_text is not None and d2 in planned.new_config_text
    result = _update(cfg, fake, UpdateOptions(repin=True))
    assert result.kept_pins == () and _digests(result.new)[(f"{HOST}/app", "v1")] == d2
    assert set(result.written) == {cfg, tmp_path / "xcargo.lock"} and d2 in cfg.read_text()


def test_a_failing_image_stops_the_run_and_nothing_is_written(tmp_path: Path, fake: FakeRegistry) -> None:
    fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1", f"{HOST}/gone:v1")
    result = _update(cfg, fake)
    assert result.stopped and result.new is None and result.written == ()
    assert len(result.errors) == 1 and isinstance(result.errors[0], RegistryError)
    assert result.errors[0].names(f"{HOST}/gone:v1")
    assert not (tmp_path / "xcargo.lock").exists()


def test_keep_going_locks_what_resolved_and_keeps_the_failure(tmp_path: Path, fake: FakeRegistry) -> None:
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1", f"{HOST}/gone:v1")
    result = _update(cfg, fake, UpdateOptions(keep_going=True))
    assert not result.stopped and len(result.errors) == 1
    assert _digests(result.new) == {(f"{HOST}/app", "v1"): d1}
    assert result.written == (tmp_path / "xcargo.lock",)


def test_a_selective_run_leaves_other_entries_as_they_were(tmp_path: Path, fake: FakeRegistry) -> None:
    a1, b1 = fake.put_image(HOST, "a", "v1"), fake.put_image(HOST, "b", "v1")
    cfg = _project(tmp_path, f"{HOST}/a:v1", f"{HOST}/b:v1")
    _update(cfg, fake)
    a2, _ = fake.put_image(HOST, "a", "v1", b"a2"), fake.put_image(HOST, "b", "v1", b"b2")
    result = _update(cfg, fake, UpdateOptions(images=(f"{HOST}/a",)))
    assert _digests(result.new) == {(f"{HOST}/a", "v1"): a2, (f"{HOST}/b", "v1"): b1}
    assert a1 != a2


def test_a_bad_platform_is_refused_when_the_options_are_built() -> None:
    with pytest.raises(InputError):
        UpdateOptions(platform="not a platform")


def test_a_library_call_prints_nothing_and_tells_its_hooks(
    tmp_path: Path, fake: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """Notices go to the caller's hooks (the CLI's print them); the default is silence."""
    d1 = fake.put_image(HOST, "app", "v1")
    cfg = _project(tmp_path, f"{HOST}/app:v1")
    _update(cfg, fake)
    lock = tmp_path / "xcargo.lock"
    edited = f'digest = "sha256:{"0" * 64}"\ndetails-from = "{d1}"'  # a bot moved the digest alone
    lock.write_text(lock.read_text().replace(f'digest = "{d1}"', edited))
    told: list[str] = []
    result = _update(cfg, fake, hooks=Hooks(tell=told.append))
    assert _digests(result.new)[(f"{HOST}/app", "v1")] == d1
    assert len(told) == 1 and told[0].startswith("notice: ") and "edited outside lockman" in told[0]
    assert capsys.readouterr() == ("", "")
