"""registries.conf: parsing and endpoint choice (pure), then mirrors against real registries."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockman.errors import InputError
from lockman.model import lockfile, reference
from lockman.registry.registries_conf import BlockedRegistry, RegistriesConf, config_files
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import unique_repo
from tests.support.registry import Registry

D1 = "sha256:" + "1" * 64


def conf(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> RegistriesConf:
    path = tmp_path / "registries.conf"
    path.write_text(text)
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(path))
    return RegistriesConf.load()


def where(c: RegistriesConf, ref: str) -> list[str]:
    return [
        f"{e.ref.registry}/{e.ref.repository}{' (mirror)' if e.mirror else ''}"
        for e in c.endpoints(reference.parse(ref))
    ]


def test_prefix_longest_match_rewrite_and_mirror_order(tmp_path: Path, monkeypatch) -> None:
    c = conf(
        tmp_path,
        """
unqualified-search-registries = ["quay.io"]
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror-a.example:5000"
[[registry.mirror]]
location = "mirror-b.example/hub"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "example.com/team"
location = "internal.example/team-mirror"

[[registry]]
prefix = "example.com/team/special:1"
location = "example.com/team/special"
blocked = true

[[registry]]
location = "old.example"
insecure = true
""",
        monkeypatch,
    )
    assert where(c, "rust:1.70") == [
        "mirror-a.example:5000/library/rust (mirror)",
        "docker.io/library/rust",
    ]
    assert where(c, f"rust@{D1}") == [
        "mirror-a.example:5000/library/rust (mirror)",
        "mirror-b.example/hub/library/rust (mirror)",
        "docker.io/library/rust",
    ]
    assert where(c, "index.docker.io/org/app:1") == [
        "mirror-a.example:5000/org/app (mirror)",
        "docker.io/org/app",
    ]
    assert where(c, "example.com/team/app:1") == ["internal.example/team-mirror/app"]
    assert where(c, "example.com/teams/app:1") == ["example.com/teams/app"]  # not a path prefix
    with pytest.raises(
        BlockedRegistry, match=r"example.com/team/special:1: pulling .* blocked by .*registries.conf"
    ):
        c.endpoints(reference.parse("example.com/team/special:1"))
    assert where(c, "example.com/team/special:2") == ["internal.example/team-mirror/special"]
    # the name as written survives the rewrite: the lockfile records it
    (ep,) = c.endpoints(reference.parse("example.com/team/app:1"))
    assert ep.ref.written == "example.com/team/app" and ep.ref.tag == "1"
    assert c.is_insecure("old.example") and not c.is_insecure("internal.example")


def test_wildcard_prefix_and_mirror_by_digest_only(tmp_path: Path, monkeypatch) -> None:
    c = conf(
        tmp_path,
        """
[[registry]]
prefix = "*.corp.example"
insecure = true
[[registry.mirror]]
location = "cache.corp.example"

[[registry]]
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-cache.example"
""",
        monkeypatch,
    )
    assert where(c, "a.b.corp.example/x/y:1") == ["cache.corp.example/x/y (mirror)", "a.b.corp.example/x/y"]
    assert c.is_insecure("a.b.corp.example:5000") and not c.is_insecure("corp.example.org")
    assert where(c, "quay.io/x/y:1") == ["quay.io/x/y"]
    assert where(c, f"quay.io/x/y@{D1}") == ["quay-cache.example/x/y (mirror)", "quay.io/x/y"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[registry]]\nlocation = 'x.example'\ninsecure = 'yes'\n", "'insecure' must be true or false"),
        ("[[registry]]\ninsecure = true\n", "needs a 'prefix' or a 'location'"),
        ("[[registry]\n", "invalid TOML"),
        (
            "[[registry]]\nlocation = 'a.example'\n[[registry.mirror]]\nlocation = 'm'\npull-from-mirror = 'x'\n",
            "'pull-from-mirror' must be one of",
        ),
    ],
)
def test_malformed_registries_conf_is_input_error(
    tmp_path: Path, monkeypatch, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        conf(tmp_path, text, monkeypatch)
    assert str(tmp_path / "registries.conf") in str(info.value)


def test_file_precedence_and_drop_ins(tmp_path: Path, monkeypatch, isolated_env: Path) -> None:
    import lockman.registry.registries_conf as rc

    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF")
    system = tmp_path / "etc" / "registries.conf"
    system_d = tmp_path / "etc" / "registries.conf.d"
    system_d.mkdir(parents=True)
    system.write_text("[[registry]]\nprefix = 'a.example'\nlocation = 'system.example'\n")
    (system_d / "10-b.conf").write_text("[[registry]]\nprefix = 'a.example'\nlocation = 'dropin.example'\n")
    (system_d / "ignored.txt").write_text("not toml [")
    monkeypatch.setattr(rc, "SYSTEM_CONF", system)
    monkeypatch.setattr(rc, "SYSTEM_CONF_D", system_d)
    assert where(RegistriesConf.load(), "a.example/x:1") == ["dropin.example/x"]  # later file wins

    user = isolated_env / ".config" / "containers" / "registries.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[[registry]]\nprefix = 'a.example'\nlocation = 'user.example'\n")
    assert config_files()[0] == user and system not in config_files()
    assert where(RegistriesConf.load(), "a.example/x:1") == ["user.example/x"]


# -- against real registries -------------------------------------------------------------------------
def write_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "registries.conf"
    path.write_text(text)
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(path))


@pytest.mark.registry
def test_docker_hub_names_served_by_mirror(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    """docker.io is unreachable here: every byte must come from the mirror."""
    name = unique_repo("hubmirror").replace("/", "-")
    idx = registry.push_index(f"library/{name}", "1.0", ["linux/amd64", "linux/arm64"])
    org = registry.push_image(f"someorg/{name}", "2.0")
    write_conf(
        tmp_path,
        monkeypatch,
        f'[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
        f'[[registry.mirror]]\nlocation = "{registry.host}"\n',
    )
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(
        f'[container]\nimage = "{name}:1.0"\n'
        f'[targets."aarch64-unknown-linux-gnu".container]\nimage = "docker.io/someorg/{name}:2.0"\n'
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert r.err == ""
    by_name = {i.name: i for i in lockfile.read(tmp_path / "xcargo.lock").images}
    assert by_name[name].digest == idx.digest  # recorded as written, not as the mirror's name
    assert by_name[f"docker.io/someorg/{name}"].digest == org.digest
    v = run("verify", "--config", cfg)
    assert v.code == 0, v.err
    r = run("resolve", f"{name}:1.0")
    assert r.out == f"{name}:1.0@{idx.digest}\n"


@pytest.mark.registry
def test_failing_mirrors_fall_back_in_order(
    tmp_path: Path, registry: Registry, own_registry: Registry, fault_proxy: FaultProxy, run, monkeypatch
) -> None:
    repo = unique_repo("fallback")
    primary = own_registry.push_image(repo, "v1")
    copy = registry.push_image(repo, "v1", salt="mirror copy")  # a mirror whose tag differs
    fault_proxy.add(r"^/v2/.+", "status", status=503)  # a broken cache
    write_conf(
        tmp_path,
        monkeypatch,
        f'[[registry]]\nlocation = "{own_registry.host}"\n'
        '[[registry.mirror]]\nlocation = "127.0.0.1:1"\n'  # 1: nothing listens
        f'[[registry.mirror]]\nlocation = "{fault_proxy.host}"\n'  # 2: 503
        f'[[registry.mirror]]\nlocation = "{registry.host}/elsewhere"\n'  # 3: lacks it (404)
        f'[[registry.mirror]]\nlocation = "{registry.host}"\n',  # 4: has it
    )
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{own_registry.host}/{repo}:v1"\n')
    r = run("resolve", f"{own_registry.host}/{repo}:v1")
    assert r.code == 0, r.err
    assert r.out == f"{own_registry.host}/{repo}:v1@{copy.digest}\n"  # the first mirror that has it
    assert "warning: mirror 127.0.0.1:1" in r.err and f"warning: mirror {fault_proxy.host}" in r.err
    assert "HTTP 503" in r.err and "elsewhere" not in r.err  # a mirror lacking an image is normal

    # Mirrors that cannot serve it: the primary location answers.
    write_conf(
        tmp_path,
        monkeypatch,
        f'[[registry]]\nlocation = "{own_registry.host}"\n'
        '[[registry.mirror]]\nlocation = "127.0.0.1:1"\n'
        f'[[registry.mirror]]\nlocation = "{registry.host}/elsewhere"\n',
    )
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == primary.digest
    assert r.err.count("warning: mirror 127.0.0.1:1") == 1  # once per run, not per request
    assert "elsewhere" not in r.err


@pytest.mark.registry
def test_location_rewrite_blocked_and_insecure(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    base = unique_repo("rewrite")
    img = registry.push_image(f"{base}/app", "1")
    write_conf(
        tmp_path,
        monkeypatch,
        f'[[registry]]\nprefix = "registry.lockman.example/team"\nlocation = "{registry.host}/{base}"\n'
        '[[registry]]\nlocation = "forbidden.example"\nblocked = true\n',
    )
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "registry.lockman.example/team/app:1"\n')
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    (entry,) = lockfile.read(tmp_path / "xcargo.lock").images
    assert (entry.name, entry.digest) == ("registry.lockman.example/team/app", img.digest)

    cfg.write_text('[container]\nimage = "forbidden.example/x:1"\n')
    r = run("update", "--config", cfg)
    assert r.code == 2 and "forbidden.example/x:1: pulling from forbidden.example is blocked by" in r.err
    assert (tmp_path / "xcargo.lock").read_text().count("registry.lockman.example/team/app") == 1


# -- a bad shared file stops the run before any request (through the CLI) ------------------------------
_BAD_SHARED_FILES = [
    pytest.param(
        '[[registry]]\nprefix = "{host}"\nlocation = "https://internal.example"\n',
        "'location' 'https://internal.example': URI schemes are not supported",
        id="scheme-in-location",
    ),
    pytest.param(
        '[[registry]]\nlocation = "{host}"\n[[registry.mirror]]\nlocation = "http://mirror.example"\n',
        "mirror #1: 'location' 'http://mirror.example': URI schemes",
        id="scheme-in-mirror",
    ),
    pytest.param(
        '[[registry]]\nlocation = "{host}"\n[[registry]]\nlocation = "{host}"\nprefix = "{host}/x"\n'
        "insecure = true\n",
        "[[registry]] #2: registry '{host}' is defined again with a conflicting 'insecure'",
        id="conflicting-insecure",
    ),
    pytest.param(
        '[[registry]]\nlocation = "{host}"\nblocked = true\n[[registry]]\nlocation = "{host}"\nprefix = "a.example"\n',
        "conflicting 'blocked'",
        id="conflicting-blocked",
    ),
    pytest.param(
        '[registries.block]\nregistries = ["{host}"]\n[[registry]]\nlocation = "{host}"\n',
        "'registry': mixing version 1 ([registries.*]) and version 2",
        id="mixed-v1-v2",
    ),
    pytest.param(
        '[[registry]]\nprefix = "{host}/team"\nblocked = true\n',
        "'location' is unset and 'prefix'",
        id="prefix-without-location",
    ),
]


@pytest.mark.registry
@pytest.mark.parametrize(("text", "message"), _BAD_SHARED_FILES)
def test_bad_registries_conf_is_exit_2_before_any_request(
    tmp_path: Path, fault_proxy: FaultProxy, run, monkeypatch, text: str, message: str
) -> None:
    """The attacker's (or the typo's) file: refused whole, naming file and key; nothing is fetched."""
    host = fault_proxy.host
    write_conf(tmp_path, monkeypatch, text.format(host=host))
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{host}/{unique_repo("badconf")}/app:1"\n')
    r = run("update", "--config", cfg)
    assert r.code == 2, r.err
    line = r.err.strip()
    assert "\n" not in line and "Traceback" not in r.err
    assert str(tmp_path / "registries.conf") in line and message.format(host=host) in line
    assert fault_proxy.count() == 0  # stopped before any request
    assert not (tmp_path / "xcargo.lock").exists()


def test_missing_containers_registries_conf_target_is_exit_2(tmp_path: Path, run, monkeypatch) -> None:
    """A typo in CONTAINERS_REGISTRIES_CONF would silently drop a block list: containers/image fails."""
    missing = tmp_path / "typo" / "registries.conf"
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(missing))
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text('[container]\nimage = "127.0.0.1:9/x/app:1"\n')  # never contacted
    r = run("update", "--config", cfg)
    assert r.code == 2 and f"{missing}: registries configuration not found" in r.err, r.err
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "")  # empty is unset, as in containers/image
    assert rc_config_main() != missing


def rc_config_main() -> Path:
    from lockman.registry.registries_conf import config_sources

    return config_sources().main


def test_drop_ins_follow_an_override_and_must_be_v2(tmp_path: Path, monkeypatch, isolated_env: Path) -> None:
    """containers/image reads the drop-ins after $CONTAINERS_REGISTRIES_CONF too: system, then user."""
    import lockman.registry.registries_conf as rc

    system_d = tmp_path / "etc.d"
    system_d.mkdir()
    monkeypatch.setattr(rc, "SYSTEM_CONF_D", system_d)
    (system_d / "20-b.conf").write_text('[[registry]]\nprefix = "a.example"\nlocation = "system-b.example"\n')
    (system_d / "10-a.conf").write_text('[[registry]]\nprefix = "a.example"\nlocation = "system-a.example"\n')
    user_d = isolated_env / ".config" / "containers" / "registries.conf.d"
    user_d.mkdir(parents=True)
    (user_d / "00-user.conf").write_text('[[registry]]\nprefix = "b.example"\nlocation = "user.example"\n')
    c = conf(tmp_path, '[[registry]]\nprefix = "a.example"\nlocation = "main.example"\n', monkeypatch)
    assert where(c, "a.example/x:1") == ["system-b.example/x"]  # alphabetical: 20-b is applied last
    assert where(c, "b.example/x:1") == ["user.example/x"]
    (user_d / "30-v1.conf").write_text('[registries.block]\nregistries = ["a.example"]\n')
    with pytest.raises(InputError, match=r"30-v1.conf: \[registries.\*\]: a drop-in must use the version 2"):
        RegistriesConf.load()


def test_xdg_config_home_is_not_where_registries_conf_lives(
    tmp_path: Path, monkeypatch, isolated_env: Path
) -> None:
    """containers/image reads $HOME/.config/containers/registries.conf whatever $XDG_CONFIG_HOME says
    (auth.json, unlike it, follows $XDG_CONFIG_HOME): one file, one meaning for podman and lockman."""
    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF")
    xdg = tmp_path / "xdg"
    (xdg / "containers").mkdir(parents=True)
    (xdg / "containers" / "registries.conf").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert rc_config_main() != xdg / "containers" / "registries.conf"
    home_conf = isolated_env / ".config" / "containers" / "registries.conf"
    home_conf.parent.mkdir(parents=True)
    home_conf.write_text("")
    assert rc_config_main() == home_conf


def test_version_1_block_list_is_honoured(tmp_path: Path, monkeypatch) -> None:
    """A v1 file is converted as containers/image does: its block list must not be dropped."""
    c = conf(
        tmp_path,
        '[registries.block]\nregistries = ["evil.example"]\n[registries.insecure]\nregistries = ["old.example/"]\n',
        monkeypatch,
    )
    with pytest.raises(BlockedRegistry):
        c.endpoints(reference.parse("evil.example/x:1"))
    assert c.is_insecure("old.example") and not c.is_insecure("evil.example")


def test_wildcard_prefix_with_location_rewrites_the_host(tmp_path: Path, monkeypatch) -> None:
    c = conf(
        tmp_path,
        '[[registry]]\nprefix = "*.example.io"\nlocation = "mirror.example.com"\n'
        '[[registry]]\nlocation = "other.example"\n',
        monkeypatch,
    )
    assert where(c, "a.b.example.io/team/app:1") == ["mirror.example.com/team/app"]
    assert where(c, "other.example/x:1") == ["other.example/x"]  # unrelated images still work
    assert where(c, "example.io/x:1") == ["example.io/x"]  # the bare domain is not a subdomain


def test_hostile_drop_ins_and_special_files_are_not_read(
    tmp_path: Path, monkeypatch, isolated_env: Path
) -> None:
    """A symlink to /dev/zero or a FIFO in a drop-in directory is skipped; named directly, it is exit 2."""
    import os

    import lockman.registry.registries_conf as rc

    system_d = tmp_path / "etc.d"
    system_d.mkdir()
    monkeypatch.setattr(rc, "SYSTEM_CONF_D", system_d)
    (system_d / "00-zero.conf").symlink_to("/dev/zero")
    os.mkfifo(system_d / "01-fifo.conf")
    (system_d / "02-dir.conf").mkdir()
    (system_d / "03-ok.conf").write_text('[[registry]]\nlocation = "ok.example"\nblocked = true\n')
    c = conf(tmp_path, "", monkeypatch)
    assert [e.location for e in c.entries] == ["ok.example"]
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(system_d / "01-fifo.conf"))
    with pytest.raises(InputError, match=r"01-fifo\.conf: not a regular file"):
        RegistriesConf.load()
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(system_d / "00-zero.conf"))
    with pytest.raises(InputError, match=r"00-zero\.conf: larger than 4 MiB; not a registries configuration"):
        RegistriesConf.load()
    big = tmp_path / "big.conf"
    big.write_text("#" * (rc.MAX_CONF_BYTES + 1))
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(big))
    with pytest.raises(InputError, match="larger than 4 MiB"):
        RegistriesConf.load()


def test_registries_config_path_is_the_older_name(tmp_path: Path, monkeypatch) -> None:
    """containers/image's environment: REGISTRIES_CONFIG_PATH only when CONTAINERS_REGISTRIES_CONF is unset."""
    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF")
    monkeypatch.setenv("REGISTRIES_CONFIG_PATH", str(tmp_path / "old-name.conf"))
    with pytest.raises(
        InputError, match=r"old-name.conf: registries configuration not found \(named by REGISTRIES_"
    ):
        RegistriesConf.load()
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "")  # set, even empty: the older name is not consulted
    assert rc_config_main() != tmp_path / "old-name.conf"


def test_dev_null_is_an_empty_configuration(tmp_path: Path, monkeypatch, isolated_env: Path) -> None:
    """CONTAINERS_REGISTRIES_CONF=/dev/null means "ignore the system file", as in containers/image;
    /dev/zero, a device that never ends, is still refused (at the size cap, not read forever)."""
    import lockman.registry.registries_conf as rc

    system = tmp_path / "etc.conf"
    system.write_text('[[registry]]\nlocation = "blocked.example"\nblocked = true\n')
    monkeypatch.setattr(rc, "SYSTEM_CONF", system)
    monkeypatch.setattr(rc, "SYSTEM_CONF_D", tmp_path / "none.d")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "/dev/null")
    assert RegistriesConf.load().entries == []
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "/dev/zero")
    with pytest.raises(InputError, match=r"^/dev/zero: larger than 4 MiB; not a registries configuration$"):
        RegistriesConf.load()


@pytest.mark.registry
def test_dev_null_registries_conf_through_the_cli(tmp_path: Path, registry: Registry, run, monkeypatch) -> None:
    """`lockman update` with CONTAINERS_REGISTRIES_CONF=/dev/null locks; /dev/zero is exit 2, no traceback."""
    img = registry.push_image(f"{unique_repo('devnull')}/app", "1")
    cfg = tmp_path / "xcargo.toml"
    cfg.write_text(f'[container]\nimage = "{registry.host}/{img.repo}:1"\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "/dev/null")
    r = run("update", "--config", cfg)
    assert r.code == 0, r.err
    assert lockfile.read(tmp_path / "xcargo.lock").images[0].digest == img.digest
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "/dev/zero")
    r = run("update", "--config", cfg)
    assert r.code == 2 and "/dev/zero: larger than 4 MiB; not a registries configuration" in r.err
