"""lockman.model.toolchain: the C library, distro, compilers, openssl and rust, old → new."""

from __future__ import annotations

import json

from lockman.model import insight, toolchain
from lockman.model.insight import ImageFacts
from lockman.model.toolchain import ToolchainChange
from lockman.model.vulns import Package


def deb(name: str, version: str, source: str = "", distro: str = "debian-11") -> Package:
    up = f"&upstream={source}" if source else ""
    return Package(name, version, f"pkg:deb/debian/{name}@{version}?arch=amd64{up}&distro={distro}")


def test_versions_by_binary_or_source_name() -> None:
    purls = [deb("libc6", "2.31-13+deb11u5", "glibc"), deb("libssl1.1", "1.1.1w-0+deb11u1", "openssl"),
             deb("gcc-10", "10.2.1-6"), deb("binutils-aarch64-linux-gnu", "2.35.2-2", "binutils"),
             deb("zlib1g", "1:1.2.11.dfsg-2", "zlib")]  # fmt: skip
    got = toolchain.versions({(p.name, p.version) for p in purls}, purls, None, {"rust": "1.70.0"})
    assert got == {
        "glibc": "2.31-13+deb11u5",
        "openssl": "1.1.1w-0+deb11u1",
        "gcc": "10.2.1-6",
        "binutils": "2.35.2-2",
        "distro": "debian 11",  # from the package URLs' distro when the SBOM names no OS
        "rust": "1.70.0",
    }


def test_alpine_musl_and_the_sbom_os() -> None:
    got = toolchain.versions({("musl", "1.2.4-r2"), ("libssl3", "3.1.4-r5")}, (), ("alpine", "3.18.5"))
    assert got == {"musl": "1.2.4-r2", "openssl": "3.1.4-r5", "distro": "alpine 3.18.5"}


def test_diff_flags_a_downgrade() -> None:
    old = {"distro": "ubuntu 20.04", "glibc": "2.31-0ubuntu9.9", "rust": "1.80.0", "gcc": "9.4.0"}
    new = {"distro": "ubuntu 18.04", "glibc": "2.27-3ubuntu1.6", "rust": "1.80.0", "openssl": "3.0.2"}
    assert toolchain.diff(old, new) == (
        ToolchainChange("distro", "ubuntu 20.04", "ubuntu 18.04", True),
        ToolchainChange("glibc", "2.31-0ubuntu9.9", "2.27-3ubuntu1.6", True),
        ToolchainChange("gcc", "9.4.0", None, False),
        ToolchainChange("openssl", None, "3.0.2", False),
        ToolchainChange("rust", "1.80.0", "1.80.0", False),
    )
    # cross-rs/cross#960: 2.18 → 2.29 is an upgrade, compared as numbers (not "2.18" > "2.2")
    assert toolchain.diff({"glibc": "2.18"}, {"glibc": "2.29"}) == (ToolchainChange("glibc", "2.18", "2.29"),)
    assert toolchain.older("2.9", "2.10") and not toolchain.older("2:1.0", "1:9.9")  # epochs first
    assert toolchain.diff({"distro": "debian 12"}, {"distro": "ubuntu 22.04"})[0].downgrade is False


def test_env_versions_only_known_keys_and_safe_values() -> None:
    env = ["PATH=/usr/bin", "RUST_VERSION=1.70.0", "RUSTUP_HOME=/x", 5, "RUST_VERSION"]
    assert toolchain.env_versions(env) == {"rust": "1.70.0"}
    assert toolchain.env_versions(["RUST_VERSION=1.70\x1b[2J"]) == {}


def test_insight_carries_the_toolchain_and_without_both_sboms_only_the_config() -> None:
    def sbom(pkgs: dict[str, str]) -> insight.Sbom:
        doc = {
            "spdxVersion": "SPDX-2.3",
            "packages": [{"name": n, "versionInfo": v} for n, v in pkgs.items()],
        }
        return insight.parse_sbom(json.dumps(doc).encode())

    old = ImageFacts(sbom=sbom({"libc6": "2.31-13"}), env={"rust": "1.70.0"})
    new = ImageFacts(sbom=sbom({"libc6": "2.36-9"}), env={"rust": "1.69.0"})
    ins = insight.compare(old, new)
    assert [c.as_dict() for c in ins.toolchain] == [
        {"component": "glibc", "old": "2.31-13", "new": "2.36-9", "downgrade": False},
        {"component": "rust", "old": "1.70.0", "new": "1.69.0", "downgrade": True},
    ]
    assert ins.as_dict()["toolchain"][1]["downgrade"] is True
    no_sbom = insight.compare(ImageFacts(env={"rust": "1.70.0"}), new)
    assert [c.component for c in no_sbom.toolchain] == ["rust"]  # glibc unknown on one side: not "added"


def test_config_env_is_read_with_the_labels() -> None:
    raw = json.dumps(
        {"created": "2026-01-01T00:00:00Z", "config": {"Env": ["RUST_VERSION=1.83.0"], "Labels": {}}}
    )
    assert insight.config_facts(raw.encode()) == ("2026-01-01T00:00:00Z", {}, {"rust": "1.83.0"})
