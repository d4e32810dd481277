"""Fixtures for the probe's real-server tests: one MariaDB with TLS for the whole session.

The server comes from the Debian package ``mariadb-server`` (``.ci/run`` installs it). If the
binaries are missing the tests *fail* with a message saying so; they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.helpers import PROBE_ENV_VARS, Probe, lambda_function
from tests.integration.mariadb_server import MariaDBMissing, MariaDBServer, start_server


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    try:
        server = start_server(tmp_path_factory.mktemp("mariadb"))
    except MariaDBMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def probe_env(mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Password-mode environment pointing at the test server; module state reset around it."""
    for name in PROBE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    env = mariadb.probe_env(PROBE_BACKOFF_BASE_S="0.05", PROBE_BACKOFF_CAP_S="0.4")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    lambda_function.reset_state()
    yield env
    lambda_function.reset_state()


@pytest.fixture
def probe(probe_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Probe:
    return Probe(capsys)
