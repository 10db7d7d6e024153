"""Shared fixtures (a pytest plugin, registered in the root conftest.py): a project directory,
git in it, a docker config in the isolated HOME, and one TLS docker-registry for the session.

Each was once written out in several test modules; the plain functions behind them live in
tests/support/project.py and tests/support/credentials.py for helpers that are not fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import credentials
from tests.support import project as project_mod
from tests.support.registry import TLSSetup, start_tls


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """``project(body)``: ``tmp_path/xcargo.toml`` holding ``body``, its path."""
    return lambda body: project_mod.project(tmp_path, body)


@pytest.fixture
def git() -> Callable[..., str]:
    """``git(cwd, *args)``: git with a throw-away identity, its stdout; a failure raises."""
    return project_mod.git


@pytest.fixture
def docker_config(isolated_env: Path) -> Callable[[dict], Path]:
    """``docker_config(data)``: ``data`` as ``$HOME/.docker/config.json`` of the isolated HOME."""
    return lambda data: credentials.docker_config(isolated_env, data)


@pytest.fixture(scope="session")
def tls_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSSetup]:
    """A TLS docker-registry with a throw-away CA, shared by the session (tests use unique repos)."""
    setup = start_tls(tmp_path_factory.mktemp("tls"))
    yield setup
    setup.registry.stop()
