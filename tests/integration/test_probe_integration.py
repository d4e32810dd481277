"""The probe handler against a real MariaDB with TLS and ``require_secure_transport=ON``."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.integration.helpers import FakeContext, Probe, lambda_function
from tests.integration.mariadb_server import (
    ALT_HOST,
    HOST,
    PROBE_PASSWORD,
    PROBE_USER,
    MariaDBServer,
    free_port,
)

# --------------------------------------------------------------------------- helpers


def _ok(resp: dict[str, Any]) -> dict[str, Any]:
    assert resp["statusCode"] == 200, resp
    body = resp["body"]
    assert body["result"]["connection_test"] == 1
    assert isinstance(body["result"]["connection_id"], int)
    assert set(body["timings_ms"]) == {"connect", "query"}
    return body


def _err(resp: dict[str, Any], status: int) -> dict[str, Any]:
    assert resp["statusCode"] == status, resp
    assert set(resp["body"]) == {"error"}
    err = resp["body"]["error"]
    assert set(err) == {"code", "type", "message", "retryable"}
    return err


def _wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


# --------------------------------------------------------------------------- reuse / fresh


def test_warm_invocations_reuse_one_connection(probe: Probe, mariadb: MariaDBServer) -> None:
    first = _ok(probe())
    second = _ok(probe())
    third = _ok(probe({}))

    assert first["reused"] is False
    assert first["timings_ms"]["connect"] > 0
    assert second["reused"] is True and third["reused"] is True
    assert second["timings_ms"]["connect"] == 0
    cid = first["result"]["connection_id"]
    assert second["result"]["connection_id"] == cid == third["result"]["connection_id"]
    # The server sees exactly one connection from the probe: the kept one.
    assert mariadb.connection_ids() == {cid}

    log = probe.last_log
    assert log["ok"] is True and log["status_code"] == 200
    assert log["connection_id"] == cid and log["reused"] is True
    assert log["error_code"] is None and log["attempts"] == 1
    assert set(log["timings_ms"]) >= {"connect", "query"}
    assert log["request_id"] == "test-request"


def test_fresh_replaces_the_kept_connection(probe: Probe, mariadb: MariaDBServer) -> None:
    first = _ok(probe())
    fresh = _ok(probe({"fresh": True}))
    after = _ok(probe())

    old_id, new_id = first["result"]["connection_id"], fresh["result"]["connection_id"]
    assert new_id != old_id
    assert fresh["reused"] is False and fresh["timings_ms"]["connect"] > 0
    assert after["reused"] is True and after["result"]["connection_id"] == new_id
    # The old connection was closed, not leaked.
    assert _wait_for(lambda: mariadb.connection_ids() == {new_id}), mariadb.connection_ids()


def test_connection_uses_tls_with_one_ssl_context_per_container(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        ctx = real(*args, **kwargs)
        built.append(ctx)
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", counting)
    contexts = []
    for _ in range(3):
        _ok(probe({"fresh": True}))
        conn = lambda_function._conn
        assert conn is not None
        contexts.append(conn.ctx)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            row = cur.fetchone()
        assert row is not None and row[1] in ("TLSv1.2", "TLSv1.3"), row
    assert len(built) == 1, "the SSL context must be built once, not per connection"
    assert all(c is built[0] for c in contexts)
    assert built[0].verify_mode == ssl.CERT_REQUIRED and built[0].check_hostname is True


# --------------------------------------------------------------------------- permanent failures


def test_wrong_password_fails_at_once_and_leaks_nothing(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Wrong-Secret-Value-42"
    monkeypatch.setenv("DB_PASSWORD", wrong)
    started = time.perf_counter()
    err = _err(probe(), 500)
    assert err["code"] == 1045 and err["type"] == "access_denied"
    assert err["retryable"] is False
    assert probe.last_log["attempts"] == 1
    assert time.perf_counter() - started < 1.0
    everything = probe.raw[-1] + repr(err)
    assert wrong not in everything and PROBE_PASSWORD not in everything


def test_untrusted_ca_fails_at_once(
    probe: Probe, mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_CA_BUNDLE", mariadb.other_ca_path)
    err = _err(probe(), 500)
    assert err["type"] == "tls_verification" and err["retryable"] is False
    assert "CERTIFICATE_VERIFY_FAILED" in err["message"]
    assert probe.last_log["attempts"] == 1
    assert probe.last_log["error_type"] == "tls_verification"


def test_default_trust_store_does_not_trust_the_test_ca(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without DB_CA_BUNDLE the system store is used, and verification is still on."""
    monkeypatch.delenv("DB_CA_BUNDLE")
    err = _err(probe(), 500)
    assert err["type"] == "tls_verification" and err["retryable"] is False


def test_host_name_is_verified(probe: Probe, mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Same server, same trusted CA, but an address the certificate does not name.
    monkeypatch.setenv("PROXY_ENDPOINT", ALT_HOST)
    err = _err(probe(), 500)
    assert err["type"] == "tls_verification" and err["retryable"] is False
    assert "mismatch" in err["message"] or "not valid" in err["message"]
    assert probe.last_log["attempts"] == 1
    # Control: the name that is in the certificate works.
    monkeypatch.setenv("PROXY_ENDPOINT", HOST)
    lambda_function.reset_state()  # a new environment means a new container
    _ok(probe())


# --------------------------------------------------------------------------- transient failures


@pytest.fixture
def server_full(mariadb: MariaDBServer) -> Iterator[list[pymysql.connections.Connection]]:
    """Fill the server: max_connections lowered and every slot held by a probe-user connection."""
    admin = mariadb.admin()  # root over the socket; SUPER also gets the extra slot
    holders: list[pymysql.connections.Connection] = []
    ctx = ssl.create_default_context(cafile=mariadb.ca_path)
    try:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL max_connections = 4")
        for _ in range(10):
            try:
                holders.append(
                    pymysql.connect(
                        host=HOST,
                        port=mariadb.port,
                        user=PROBE_USER,
                        password=PROBE_PASSWORD,
                        ssl=ctx,
                        connect_timeout=2,
                    )
                )
            except pymysql.err.OperationalError as exc:
                assert exc.args[0] == 1040, exc
                break
        else:
            pytest.fail("could not fill the server")
        yield holders
    finally:
        for conn in holders:
            with contextlib.suppress(pymysql.err.Error):
                conn.close()
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL max_connections = %s", (mariadb.max_connections,))
        admin.close()


def test_server_full_is_retried_with_backoff_then_503(probe: Probe, server_full: list[Any]) -> None:
    started = time.perf_counter()
    err = _err(probe({"fresh": True}), 503)
    elapsed = time.perf_counter() - started
    assert err["code"] == 1040 and err["type"] == "too_many_connections"
    assert err["retryable"] is True
    assert probe.last_log["attempts"] == 5  # PROBE_MAX_ATTEMPTS default
    # Four backoffs with base 0.05 s, cap 0.4 s, equal jitter: at least half of each ceiling.
    assert elapsed >= (0.05 + 0.1 + 0.2 + 0.4) / 2
    assert elapsed < 5


def test_server_full_recovers_when_a_slot_frees_up(
    probe: Probe, server_full: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_MAX_ATTEMPTS", "12")  # up to ~3.5 s of backoff: ample time
    holder = server_full.pop()
    threading.Timer(0.2, holder.close).start()
    body = _ok(probe({"fresh": True}, FakeContext(remaining_ms=10_000)))
    assert body["reused"] is False
    assert probe.last_log["attempts"] > 1


def test_server_down_is_retried_then_503(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PORT", str(free_port()))  # nothing listens there: connection refused
    started = time.perf_counter()
    err = _err(probe(), 503)
    elapsed = time.perf_counter() - started
    assert err["code"] == 2003 and err["type"] == "connect_failed" and err["retryable"] is True
    assert probe.last_log["attempts"] == 5
    assert (0.05 + 0.1 + 0.2 + 0.4) / 2 <= elapsed < 5


def test_stopped_server_then_back(probe: Probe, mariadb: MariaDBServer) -> None:
    _ok(probe())
    mariadb.stop()
    try:
        err = _err(probe(), 503)
        assert err["code"] == 2003 and err["retryable"] is True
    finally:
        mariadb.start()
    body = _ok(probe())
    assert body["reused"] is False


def test_reconnects_transparently_after_server_restart(probe: Probe, mariadb: MariaDBServer) -> None:
    _ok(probe())
    assert lambda_function._conn is not None
    mariadb.restart()
    body = _ok(probe())  # the kept connection is dead; replaced within this invocation
    assert body["reused"] is False
    assert probe.last_log["stale_replaced"] is True
    assert mariadb.connection_ids() == {body["result"]["connection_id"]}


def test_connection_closed_by_server_is_replaced(probe: Probe, mariadb: MariaDBServer) -> None:
    old = _ok(probe())["result"]["connection_id"]
    mariadb.execute("KILL %s", (old,))
    assert _wait_for(lambda: old not in mariadb.connection_ids())
    body = _ok(probe())
    assert body["reused"] is False and body["result"]["connection_id"] != old
    assert probe.last_log["stale_replaced"] is True
    assert probe.last_log["attempts"] == 2


def test_idle_timeout_close_is_replaced(probe: Probe, mariadb: MariaDBServer) -> None:
    mariadb.execute("SET GLOBAL wait_timeout = 1")
    try:
        old = _ok(probe())["result"]["connection_id"]  # this session gets wait_timeout=1
    finally:
        mariadb.execute("SET GLOBAL wait_timeout = 28800")
    assert _wait_for(lambda: old not in mariadb.connection_ids(), timeout=5)
    body = _ok(probe())
    assert body["reused"] is False and body["result"]["connection_id"] != old
    assert probe.last_log["stale_replaced"] is True


def test_invocation_stays_inside_the_remaining_time(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts TCP but never speaks: timeouts are cut to the Lambda's remaining time."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blackhole:
        blackhole.bind((HOST, 0))
        blackhole.listen(16)  # the kernel completes the TCP handshake; nobody answers
        monkeypatch.setenv("DB_PORT", str(blackhole.getsockname()[1]))
        started = time.perf_counter()
        err = _err(probe(context=FakeContext(remaining_ms=1500)), 503)
        elapsed = time.perf_counter() - started
    assert err["retryable"] is True and err["code"] in (2013, 2003)
    assert elapsed < 1.5 * 0.9, f"took {elapsed:.2f}s of a 1.5s remaining time"


def test_probe_session_is_autocommit(probe: Probe) -> None:
    """No open transaction after the probe, so RDS Proxy can return the backend connection to its pool."""
    _ok(probe())
    conn = lambda_function._conn
    assert conn is not None
    with conn.cursor() as cur:
        cur.execute("SELECT @@session.autocommit, @@session.in_transaction")
        row = cur.fetchone()
    assert row == (1, 0)
