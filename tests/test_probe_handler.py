"""Pure parts of the probe handler, without a server: endpoint-name rule, DB_USERS, event targets."""

from __future__ import annotations

import json
import ssl
from typing import Any

import pymysql
import pytest

from tests.integration.helpers import lambda_function as lf

DOMAIN = "proxy-abc123def456.us-east-1.rds.amazonaws.com"
PROXY = f"demo.{DOMAIN}"
WILDCARD = {"subjectAltName": (("DNS", f"*.{DOMAIN}"),)}


def _cfg(**env: str) -> Any:
    base = {"PROXY_ENDPOINT": PROXY, "DB_USER": "rdsproxy_probe"}
    return lf.load_config({**base, **env})


@pytest.mark.parametrize(
    "host",
    [
        f"demo.{DOMAIN}",  # the default endpoint: what any TLS client accepts
        f"demo-reader.endpoint.{DOMAIN}",  # an endpoint you create: under the proxy's domain
        f"DEMO-READER.ENDPOINT.{DOMAIN.upper()}.",  # DNS is case-insensitive; trailing dot
    ],
)
def test_reader_names_under_the_proxy_domain_are_accepted(host: str) -> None:
    lf.check_endpoint_name(WILDCARD, host, PROXY)


@pytest.mark.parametrize(
    ("cert", "host", "proxy"),
    [
        # another proxy's endpoint
        (WILDCARD, "r.endpoint.proxy-zzz.us-east-1.rds.amazonaws.com", PROXY),
        # a look-alike suffix, not a sub-domain
        (WILDCARD, f"evil{DOMAIN}", PROXY),
        (WILDCARD, f"r.endpoint.{DOMAIN}.evil.example", PROXY),
        # PROXY_ENDPOINT is not a proxy name: no domain to trust
        (WILDCARD, f"r.endpoint.{DOMAIN}", "10.0.0.5"),
        (WILDCARD, f"r.endpoint.{DOMAIN}", f"x.{DOMAIN}.example.com"),
        # right domain, but the certificate is not that domain's wildcard
        ({"subjectAltName": (("DNS", f"demo.{DOMAIN}"),)}, f"r.endpoint.{DOMAIN}", PROXY),
        ({"subjectAltName": (("DNS", "*.rds.amazonaws.com"),)}, f"r.endpoint.{DOMAIN}", PROXY),
        ({}, f"r.endpoint.{DOMAIN}", PROXY),
        (None, f"r.endpoint.{DOMAIN}", PROXY),
    ],
)
def test_other_reader_names_are_refused(cert: Any, host: str, proxy: str) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="host name mismatch"):
        lf.check_endpoint_name(cert, host, proxy)


def test_standard_names_and_addresses_still_match() -> None:
    cert = {"subjectAltName": (("DNS", "localhost"), ("DNS", "*.example.com"), ("IP Address", "127.0.0.3"))}
    for host in ("localhost", "a.example.com", "127.0.0.3"):
        lf.check_endpoint_name(cert, host, "127.0.0.1")
    for host in ("a.b.example.com", "example.com", "127.0.0.4"):  # a wildcard is one label only
        with pytest.raises(ssl.SSLCertVerificationError):
            lf.check_endpoint_name(cert, host, "127.0.0.1")


def test_the_writer_context_verifies_host_names_and_the_reader_context_its_own_way() -> None:
    lf.reset_state()
    writer = lf.ssl_context(None)
    reader = lf.ssl_context(None, PROXY)
    assert writer.check_hostname is True and writer.verify_mode == ssl.CERT_REQUIRED
    assert isinstance(reader, lf.ReaderSSLContext) and reader.verify_mode == ssl.CERT_REQUIRED
    assert reader.proxy_host == PROXY and reader.minimum_version == ssl.TLSVersion.TLSv1_2
    assert lf.ssl_context(None) is writer and lf.ssl_context(None, PROXY) is reader  # one per container
    lf.reset_state()


def test_db_users_parses_iam_and_password_users() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"
    users = lf.parse_db_users(
        json.dumps(
            {"app": {"auth": "password", "secret_arn": arn}, "etl": {"auth": "iam", "secret_arn": None}}
        )
    )
    assert users == {"app": ("password", arn), "etl": ("iam", None)}
    assert lf.parse_db_users(None) == {} and lf.parse_db_users("  ") == {}


def test_event_targets() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"
    cfg = _cfg(
        DB_USERS=json.dumps({"app": {"auth": "password", "secret_arn": arn}}),
        PROXY_READER_ENDPOINT=f"ro.endpoint.{DOMAIN}",
    )
    t = lf.resolve_target(cfg, {})
    assert (t.endpoint, t.host, t.user, t.auth) == ("writer", PROXY, "rdsproxy_probe", "iam")
    t = lf.resolve_target(cfg, {"user": "app", "endpoint": "reader"})
    assert (t.endpoint, t.host, t.user, t.auth, t.secret_arn) == (
        "reader",
        f"ro.endpoint.{DOMAIN}",
        "app",
        "password",
        arn,
    )
    assert lf.resolve_target(cfg, "not a dict").user == "rdsproxy_probe"
    with pytest.raises(lf.ConfigError, match=r"unknown user 'x'.*app, rdsproxy_probe"):
        lf.resolve_target(cfg, {"user": "x"})


def test_the_reader_endpoint_is_optional_config() -> None:
    cfg = _cfg()
    assert cfg.reader_host is None
    with pytest.raises(lf.ConfigError, match="PROXY_READER_ENDPOINT is not set"):
        lf.resolve_target(cfg, {"endpoint": "reader"})


class _Cursor:
    def __init__(self, conn: _FakeConn) -> None:
        self.conn = conn
        self.row: tuple[Any, ...] | None = None

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.conn.executed.append(sql)
        if "aurora" in sql and not self.conn.aurora:
            raise pymysql.err.OperationalError(1193, "Unknown system variable 'aurora_server_id'")
        self.row = self.conn.row

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.row


class _FakeConn:
    """Stands in for a pymysql connection to a server we cannot run here (Aurora)."""

    def __init__(self, host: str, aurora: bool, row: tuple[Any, ...]) -> None:
        self.host, self.aurora, self.row = host, aurora, row
        self.executed: list[str] = []

    def cursor(self) -> _Cursor:
        return _Cursor(self)


def test_aurora_is_asked_for_innodb_read_only_and_aurora_server_id_in_one_select() -> None:
    lf.reset_state()
    conn = _FakeConn("aurora.example", True, (1, 77, "app@%", 1, "demo-instance-2"))
    row = lf._run_query(conn)  # type: ignore[arg-type]
    assert conn.executed == [lf.AURORA_QUERY]
    assert "@@global.innodb_read_only" in lf.AURORA_QUERY and "@@aurora_server_id" in lf.AURORA_QUERY
    result = lf._result(row, "reader")
    assert result == {
        "connection_test": 1,
        "connection_id": 77,
        "user": "app@%",
        "endpoint": "reader",
        "read_only": True,
        "server_id": "demo-instance-2",
    }
    lf._run_query(conn)  # type: ignore[arg-type]
    assert conn.executed == [lf.AURORA_QUERY] * 2  # one round trip per warm probe
    lf.reset_state()


def test_elsewhere_read_only_and_server_id_after_one_extra_round_trip_per_host() -> None:
    lf.reset_state()
    first = _FakeConn("mysql.example", False, (1, 5, "probe@%", 0, 1))
    assert lf._result(lf._run_query(first), "writer")["read_only"] is False  # type: ignore[arg-type]
    assert first.executed == [lf.AURORA_QUERY, lf.QUERY]
    assert "@@global.read_only" in lf.QUERY and "@@global.server_id" in lf.QUERY
    second = _FakeConn("mysql.example", False, (1, 6, "probe@%", 0, 1))  # a new connection, same host
    lf._run_query(second)  # type: ignore[arg-type]
    assert second.executed == [lf.QUERY]
    lf.reset_state()
