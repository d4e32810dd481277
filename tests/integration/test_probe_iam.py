"""IAM mode against the real server: boto3 really signs the token, the server really checks it.

Only the credentials and the clock are stubbed (fixed fake keys in the environment, a frozen
SigV4 timestamp), never pymysql. With the clock frozen the token is deterministic, so the test
computes the token it expects independently and makes it the IAM user's password: the login
succeeds only if the handler generated exactly that token and presented it to the server.

(RDS Proxy additionally asks the client to switch to ``mysql_clear_password`` for IAM logins;
pymysql answers that auth-switch by itself. MariaDB has no built-in cleartext plugin outside
PAM, so here the token is checked as a ``mysql_native_password`` password.)
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.auth
import pytest

from tests.integration.helpers import Probe
from tests.integration.mariadb_server import HOST, IAM_USER, MariaDBServer

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token-for-tests"
REGION = "eu-west-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime(2025, 1, 2, 3, 4, 5)

    def __call__(self, *args: Any, **kwargs: Any) -> datetime.datetime:
        return self.now


@pytest.fixture
def iam(probe_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Clock]:
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
    # A decoy: IAM mode must not read DB_PASSWORD (the stack never sets one).
    monkeypatch.setenv("DB_PASSWORD", "decoy-password-must-not-be-used")
    clock = Clock()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", clock)
    yield clock


def expected_token(port: int) -> str:
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        region_name=REGION,
    )
    return str(
        session.client("rds").generate_db_auth_token(
            DBHostname=HOST, Port=port, DBUsername=IAM_USER, Region=REGION
        )
    )


def test_iam_token_is_generated_per_connection_and_checked_by_the_server(
    iam: Clock, probe: Probe, mariadb: MariaDBServer
) -> None:
    token1 = expected_token(mariadb.port)
    # What generate_db_auth_token signs: host:port, Action=connect, DBUser, 15 minutes, our keys.
    assert token1.startswith(f"{HOST}:{mariadb.port}/?")
    assert "Action=connect" in token1 and f"DBUser={IAM_USER}" in token1
    assert "X-Amz-Expires=900" in token1 and "X-Amz-Security-Token=" in token1
    assert f"X-Amz-Credential={ACCESS_KEY}%2F20250102%2F{REGION}%2Frds-db%2Faws4_request" in token1
    mariadb.set_iam_password(token1)

    first = probe()
    assert first["statusCode"] == 200, first
    assert first["body"]["reused"] is False
    assert probe.last_log["auth"] == "iam"

    # A new connection needs a new token: move the clock, accept only the new token.
    iam.now += datetime.timedelta(minutes=1)
    token2 = expected_token(mariadb.port)
    assert token2 != token1
    mariadb.set_iam_password(token2)

    second = probe({"fresh": True})
    assert second["statusCode"] == 200, second
    cid = second["body"]["result"]["connection_id"]
    assert cid != first["body"]["result"]["connection_id"]

    # Warm reuse needs no token at all.
    iam.now += datetime.timedelta(minutes=1)
    third = probe()
    assert third["statusCode"] == 200 and third["body"]["reused"] is True
    assert third["body"]["result"]["connection_id"] == cid

    # The server really checks it: a token for another time is refused, permanently.
    fourth = probe({"fresh": True})
    assert fourth["statusCode"] == 500, fourth
    err = fourth["body"]["error"]
    assert err["code"] == 1045 and err["retryable"] is False

    everything = "".join(probe.raw) + repr([first, second, third, fourth])
    for secret in (token1, token2, SECRET_KEY, SESSION_TOKEN, "X-Amz-Signature"):
        assert secret not in everything


def test_missing_credentials_is_a_readable_permanent_error(
    iam: Clock, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    resp = probe()
    assert resp["statusCode"] == 500
    err = resp["body"]["error"]
    assert err["type"] == "iam_token" and err["retryable"] is False and err["code"] is None
    assert "credentials" in err["message"].lower()
