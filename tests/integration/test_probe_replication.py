"""The writer and reader endpoints against REAL replication: a MariaDB primary and a read-only replica.

Both servers run TLS with ``require_secure_transport=ON`` and share one test CA; the replica
replicates from the primary over TLS (``MASTER_SSL=1``, server certificate verified). They
listen on the same port on two loopback addresses (127.0.0.1 and 127.0.0.3), as the proxy's
endpoints all listen on 3306: PROXY_ENDPOINT is the primary, PROXY_READER_ENDPOINT the replica.
The replica's certificate also carries the wildcard an RDS proxy presents
(``*.proxy-<id>.<region>.rds.amazonaws.com``), so the reader endpoint's name check runs
against a real handshake; those names reach 127.0.0.3 through a test-only resolver.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.integration.helpers import PROBE_ENV_VARS, Probe, lambda_function
from tests.integration.mariadb_server import (
    HOST,
    IAM_USER,
    PROBE_DB,
    PROBE_USER,
    MariaDBMissing,
    MariaDBServer,
    free_port_on,
)

REPLICA_HOST = "127.0.0.3"
NOTHING_HOST = "127.0.0.4"  # nothing listens there
PROXY_DOMAIN = "proxy-abc123def456.us-east-1.rds.amazonaws.com"
PROXY_NAME = f"demo.{PROXY_DOMAIN}"  # a default proxy endpoint's shape
READER_NAME = f"demo-reader.endpoint.{PROXY_DOMAIN}"  # an endpoint you create: two labels deeper
REPL_PASSWORD = "repl-test-password"


def _wait(predicate: Any, timeout: float, what: str, detail: Any = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    if not predicate():
        pytest.fail(f"{what} within {timeout}s: {detail()}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    """A primary (binlog, server_id 1) and a replica (server_id 2, read_only) replicating over TLS."""
    port = free_port_on(HOST, REPLICA_HOST)
    primary = MariaDBServer(
        basedir=Path(tmp_path_factory.mktemp("primary")),
        port=port,
        bind_hosts=(HOST,),
        log_bin=True,
        extra_args=("--server-id=1",),
    )
    replica = MariaDBServer(
        basedir=Path(tmp_path_factory.mktemp("replica")),
        port=port,
        bind_hosts=(REPLICA_HOST,),
        extra_cert_names=(f"*.{PROXY_DOMAIN}",),
        extra_args=("--server-id=2", "--read-only=ON", "--skip-slave-start"),
        datadir_from=primary.datadir,  # copied before the primary ever starts
    )
    servers = [primary, replica]
    try:
        try:
            primary.prepare()
        except MariaDBMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        replica.ca = primary.ca
        replica.prepare()
        primary.start()
        replica.start()
        # Everything from here on is in the primary's binlog, so the replica gets it by replication.
        primary.execute("CREATE USER 'repl'@'%%' IDENTIFIED BY %s REQUIRE SSL", (REPL_PASSWORD,))
        primary.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'")
        primary.create_users()
        primary.execute(f"CREATE TABLE `{PROBE_DB}`.marks (id INT PRIMARY KEY, note VARCHAR(64))")
        first_binlog = primary.execute("SHOW BINARY LOGS")[0][0]
        replica.execute(
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER='repl', MASTER_PASSWORD=%s, "
            "MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1, "
            "MASTER_LOG_FILE=%s, MASTER_LOG_POS=4",
            (HOST, port, REPL_PASSWORD, primary.ca_path, first_binlog),
        )
        replica.execute("START SLAVE")
        _wait(
            lambda: (
                replica.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (PROBE_USER,))[0][0] == 1
            ),
            20,
            "the replica did not receive the probe user",
            lambda: replica.execute("SHOW SLAVE STATUS"),
        )
        yield primary, replica
    finally:
        for server in reversed(servers):
            server.stop()


def _replica_status(replica: MariaDBServer) -> dict[str, Any]:
    conn = replica.admin()
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
    finally:
        conn.close()
    assert row is not None
    return dict(row)


@pytest.fixture
def env(
    pair: tuple[MariaDBServer, MariaDBServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    primary, _ = pair
    for name in PROBE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    values = primary.probe_env(
        PROXY_READER_ENDPOINT=REPLICA_HOST, PROBE_BACKOFF_BASE_S="0.05", PROBE_BACKOFF_CAP_S="0.4"
    )
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    lambda_function.reset_state()
    yield values
    lambda_function.reset_state()


@pytest.fixture
def probe(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Probe:
    return Probe(capsys)


def _ok(resp: dict[str, Any]) -> dict[str, Any]:
    assert resp["statusCode"] == 200, resp
    result: dict[str, Any] = resp["body"]["result"]
    assert result["connection_test"] == 1
    return resp["body"]


def _err(resp: dict[str, Any], status: int) -> dict[str, Any]:
    assert resp["statusCode"] == status, resp
    err: dict[str, Any] = resp["body"]["error"]
    return err


# --------------------------------------------------------------------------- the two endpoints


def test_replication_runs_over_tls(pair: tuple[MariaDBServer, MariaDBServer]) -> None:
    _, replica = pair
    status = _replica_status(replica)
    assert status["Slave_IO_Running"] == "Yes" and status["Slave_SQL_Running"] == "Yes", status
    assert status["Master_SSL_Allowed"] == "Yes" and status["Master_SSL_Verify_Server_Cert"] == "Yes"


def test_writer_probe_answers_from_the_primary_which_accepts_writes(
    probe: Probe, pair: tuple[MariaDBServer, MariaDBServer]
) -> None:
    primary, _replica = pair
    body = _ok(probe())
    result = body["result"]
    assert result["endpoint"] == "writer"
    assert result["read_only"] is False
    assert result["server_id"] == 1
    assert result["user"] == f"{PROBE_USER}@%"
    assert result["connection_id"] in primary.connection_ids()
    assert probe.last_log["endpoint"] == "writer" and probe.last_log["server_id"] == 1


def test_reader_probe_answers_from_the_replica_which_refuses_writes(
    probe: Probe, pair: tuple[MariaDBServer, MariaDBServer]
) -> None:
    _primary, replica = pair
    result = _ok(probe({"endpoint": "reader"}))["result"]
    assert result["endpoint"] == "reader"
    assert result["read_only"] is True
    assert result["server_id"] == 2
    assert result["user"] == f"{PROBE_USER}@%"
    assert result["connection_id"] in replica.connection_ids()
    assert probe.last_log["endpoint"] == "reader" and probe.last_log["read_only"] is True


def test_writer_and_reader_keep_separate_connections(probe: Probe) -> None:
    w1 = _ok(probe())
    r1 = _ok(probe({"endpoint": "reader"}))
    w2 = _ok(probe({"endpoint": "writer"}))
    r2 = _ok(probe({"endpoint": "reader"}))
    assert r1["reused"] is False  # switching endpoints never reuses the writer's session
    assert w2["reused"] is True and w2["result"]["connection_id"] == w1["result"]["connection_id"]
    assert r2["reused"] is True and r2["result"]["connection_id"] == r1["result"]["connection_id"]
    assert {w2["result"]["server_id"], r2["result"]["server_id"]} == {1, 2}


def test_a_row_written_through_the_writer_is_read_through_the_reader(probe: Probe) -> None:
    """Uses the probe's own kept connections: the writer's takes the INSERT, the reader's sees it."""
    _ok(probe())
    writer = lambda_function._conn
    assert writer is not None
    _ok(probe({"endpoint": "reader"}))
    reader = lambda_function._conn
    assert reader is not None and reader is not writer
    note = f"written at {time.time()}"
    with writer.cursor() as cur:
        cur.execute(f"REPLACE INTO `{PROBE_DB}`.marks VALUES (1, %s)", (note,))

    def seen() -> bool:
        with reader.cursor() as cur:
            cur.execute(f"SELECT note FROM `{PROBE_DB}`.marks WHERE id = 1")
            row = cur.fetchone()
        return row is not None and row[0] == note

    _wait(seen, 10, "the row written through the writer was not readable through the reader")
    # ...and the reader really is read-only for the probe's user (1290: --read-only).
    with pytest.raises(pymysql.err.OperationalError) as refused, reader.cursor() as cur:
        cur.execute(f"INSERT INTO `{PROBE_DB}`.marks VALUES (2, 'through the reader')")
    assert refused.value.args[0] == 1290


def test_reader_without_a_reader_endpoint_is_a_clear_500(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROXY_READER_ENDPOINT")
    err = _err(probe({"endpoint": "reader"}), 500)
    assert err["type"] == "config" and err["retryable"] is False
    assert "PROXY_READER_ENDPOINT" in err["message"]
    _ok(probe())  # the writer still works


@pytest.mark.parametrize("endpoint", ["READER", "replica", 1])
def test_unknown_endpoint_is_a_clear_500(probe: Probe, endpoint: object) -> None:
    err = _err(probe({"endpoint": endpoint}), 500)
    assert err["type"] == "config"
    assert repr(endpoint) in err["message"] and "'writer'" in err["message"] and "'reader'" in err["message"]


def test_reader_down_is_retried_then_503(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_READER_ENDPOINT", NOTHING_HOST)
    err = _err(probe({"endpoint": "reader"}), 503)
    assert err["code"] == 2003 and err["retryable"] is True
    assert probe.last_log["attempts"] == 5
    _ok(probe())  # the writer is unaffected


def test_reader_reconnects_after_the_replica_kills_its_connection(
    probe: Probe, pair: tuple[MariaDBServer, MariaDBServer]
) -> None:
    _, replica = pair
    old = _ok(probe({"endpoint": "reader"}))["result"]["connection_id"]
    replica.execute("KILL %s", (old,))
    _wait(lambda: old not in replica.connection_ids(), 3, "the killed connection stayed")
    body = _ok(probe({"endpoint": "reader"}))
    assert body["reused"] is False and body["result"]["server_id"] == 2
    assert probe.last_log["stale_replaced"] is True


# --------------------------------------------------------------------------- TLS on endpoint names


@pytest.fixture
def proxy_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A test-only resolver: proxy-style names -> loopback addresses (nothing else changes)."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(names.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_reader_endpoint_name_under_the_proxy_domain_is_accepted(
    probe: Probe, proxy_dns: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo-reader.endpoint.proxy-…` is two labels under the certificate's `*.proxy-…`: no standard
    TLS client accepts it, the reader check does (chain verified, name under the proxy's domain)."""
    proxy_dns.update({PROXY_NAME: HOST, READER_NAME: REPLICA_HOST})
    monkeypatch.setenv("PROXY_ENDPOINT", PROXY_NAME)
    monkeypatch.setenv("PROXY_READER_ENDPOINT", READER_NAME)
    result = _ok(probe({"endpoint": "reader"}))["result"]
    assert result["read_only"] is True and result["server_id"] == 2


def test_a_default_endpoint_never_gets_the_relaxed_check(
    probe: Probe, proxy_dns: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same replica, certificate and name, but as PROXY_ENDPOINT: full host-name verification.
    proxy_dns.update({READER_NAME: REPLICA_HOST})
    monkeypatch.setenv("PROXY_ENDPOINT", READER_NAME)
    err = _err(probe(), 500)
    assert err["type"] == "tls_verification" and err["retryable"] is False


@pytest.mark.parametrize(
    ("proxy", "reader"),
    [
        # The reader's name is under another proxy's domain.
        (PROXY_NAME, "demo-reader.endpoint.proxy-zzz999zzz999.us-east-1.rds.amazonaws.com"),
        # The proxy endpoint is not an RDS proxy name, so there is no proxy domain to trust.
        ("127.0.0.1", READER_NAME),
        # Under the proxy's domain, but the proxy domain is not the certificate's wildcard.
        (
            "demo.proxy-fff000fff000.us-east-1.rds.amazonaws.com",
            "r.endpoint.proxy-fff000fff000.us-east-1.rds.amazonaws.com",
        ),
    ],
)
def test_reader_endpoint_names_outside_the_proxy_domain_are_refused(
    probe: Probe, proxy_dns: dict[str, str], monkeypatch: pytest.MonkeyPatch, proxy: str, reader: str
) -> None:
    proxy_dns.update({proxy: HOST, reader: REPLICA_HOST})
    monkeypatch.setenv("PROXY_ENDPOINT", proxy)
    monkeypatch.setenv("PROXY_READER_ENDPOINT", reader)
    err = _err(probe({"endpoint": "reader"}), 500)
    assert err["type"] == "tls_verification" and err["retryable"] is False
    assert "host name mismatch" in err["message"]
    assert probe.last_log["attempts"] == 1


def test_reader_endpoint_chain_is_still_verified(
    probe: Probe, proxy_dns: dict[str, str], monkeypatch: pytest.MonkeyPatch, pair: Any
) -> None:
    primary, _ = pair
    proxy_dns.update({PROXY_NAME: HOST, READER_NAME: REPLICA_HOST})
    monkeypatch.setenv("PROXY_ENDPOINT", PROXY_NAME)
    monkeypatch.setenv("PROXY_READER_ENDPOINT", READER_NAME)
    monkeypatch.setenv("DB_CA_BUNDLE", primary.other_ca_path)
    err = _err(probe({"endpoint": "reader"}), 500)
    assert err["type"] == "tls_verification" and "CERTIFICATE_VERIFY_FAILED" in err["message"]


def test_the_name_is_checked_before_any_credential_is_sent(
    probe: Probe, proxy_dns: dict[str, str], monkeypatch: pytest.MonkeyPatch, pair: Any
) -> None:
    """With a wrong password, a check made after the login would surface as 1045 and count as an
    access-denied error on the server; checked during the handshake, the server never sees a login."""
    _, replica = pair
    reader = "demo-reader.endpoint.proxy-zzz999zzz999.us-east-1.rds.amazonaws.com"
    proxy_dns.update({PROXY_NAME: HOST, reader: REPLICA_HOST})
    monkeypatch.setenv("PROXY_ENDPOINT", PROXY_NAME)
    monkeypatch.setenv("PROXY_READER_ENDPOINT", reader)
    monkeypatch.setenv("DB_PASSWORD", "wrong-password-never-sent")
    denied = "SHOW GLOBAL STATUS LIKE 'Access_denied_errors'"
    before = replica.execute(denied)[0][1]
    err = _err(probe({"endpoint": "reader"}), 500)
    assert err["type"] == "tls_verification" and err["code"] != 1045
    assert replica.execute(denied)[0][1] == before
    # Control: the same wrong password on an accepted name is refused by the server itself.
    proxy_dns[READER_NAME] = REPLICA_HOST
    monkeypatch.setenv("PROXY_READER_ENDPOINT", READER_NAME)
    lambda_function.reset_state()
    assert _err(probe({"endpoint": "reader"}), 500)["code"] == 1045
    assert int(replica.execute(denied)[0][1]) == int(before) + 1


# --------------------------------------------------------------------------- IAM on the reader


def test_reader_iam_token_is_signed_for_the_reader_host(
    probe: Probe, pair: tuple[MariaDBServer, MariaDBServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Same IAM rules as the writer: a fresh token per connection, signed for the reader's host name."""
    import boto3
    import botocore.auth

    from tests.integration.test_probe_iam import ACCESS_KEY, REGION, SECRET_KEY, SESSION_TOKEN, Clock

    primary, replica = pair
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("DB_AUTH", "iam")
    monkeypatch.setenv("DB_USER", IAM_USER)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", Clock())
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        region_name=REGION,
    )
    token = session.client("rds").generate_db_auth_token(
        DBHostname=REPLICA_HOST, Port=primary.port, DBUsername=IAM_USER, Region=REGION
    )
    primary.set_iam_password(str(token))  # replicated to the replica like any account change
    query = "SELECT Password FROM mysql.user WHERE User = %s"
    _wait(
        lambda: replica.execute(query, (IAM_USER,)) == primary.execute(query, (IAM_USER,)),
        10,
        "the IAM user's new password did not replicate",
    )
    result = _ok(probe({"endpoint": "reader"}))["result"]
    assert result["user"] == f"{IAM_USER}@%" and result["server_id"] == 2
    # A token for the reader's host is not the writer's token: the writer refuses it.
    err = _err(probe(), 500)
    assert err["code"] == 1045
    everything = "".join(probe.raw)
    assert str(token) not in everything and "X-Amz-Signature" not in everything
