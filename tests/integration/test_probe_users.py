"""The probe as another database user (issue 8), against the real server.

Password users: the password lives only in a Secrets Manager secret, served by moto in server
mode (``moto.server.ThreadedMotoServer`` on 127.0.0.1); the handler finds it through
``AWS_ENDPOINT_URL_SECRETS_MANAGER``, as boto3 does for any client created the default way.
IAM users: the token boto3 signs (fixed fake keys, frozen clock) is made the user's password,
as in test_probe_iam.py.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.auth
import pytest

from tests.integration.helpers import Probe, lambda_function
from tests.integration.mariadb_server import HOST, IAM_USER, PROBE_DB, PROBE_USER, MariaDBServer, free_port
from tests.integration.test_probe_iam import ACCESS_KEY, REGION, SECRET_KEY, SESSION_TOKEN, Clock

APP_USER = "app_reader"
APP_PASSWORD = "App-Reader-Secret-Value-1"
ROTATED_PASSWORD = "App-Reader-Rotated-Value-2"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def secrets(aws_env: str) -> Any:
    return boto3.session.Session().client("secretsmanager", region_name=REGION)


@pytest.fixture
def app_user(
    probe_env: dict[str, str],
    mariadb: MariaDBServer,
    secrets: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: Any,
) -> Iterator[str]:
    """A SELECT-only password user whose password exists only in its secret; DB_USERS lists it."""
    mariadb.execute(f"CREATE OR REPLACE USER '{APP_USER}'@'%%' IDENTIFIED BY %s REQUIRE SSL", (APP_PASSWORD,))
    mariadb.execute(f"GRANT SELECT ON `{PROBE_DB}`.* TO '{APP_USER}'@'%'")
    name = f"test/{request.node.name}"[:500]
    arn = secrets.create_secret(
        Name=name,
        SecretString=json.dumps({"username": APP_USER, "password": APP_PASSWORD, "engine": "mysql"}),
    )["ARN"]
    users = {
        APP_USER: {"auth": "password", "secret_arn": arn},
        IAM_USER: {"auth": "iam", "secret_arn": None},
    }
    monkeypatch.setenv("DB_USERS", json.dumps(users))
    lambda_function.reset_state()
    yield arn
    with contextlib.suppress(secrets.exceptions.ResourceNotFoundException):
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    mariadb.execute(f"DROP USER IF EXISTS '{APP_USER}'@'%'")


def _ok(resp: dict[str, Any]) -> dict[str, Any]:
    assert resp["statusCode"] == 200, resp
    return resp["body"]


def _err(resp: dict[str, Any], status: int) -> dict[str, Any]:
    assert resp["statusCode"] == status, resp
    err: dict[str, Any] = resp["body"]["error"]
    return err


def test_probe_as_a_password_user_reads_its_secret_and_leaks_nothing(
    probe: Probe, app_user: str, mariadb: MariaDBServer
) -> None:
    body = _ok(probe({"user": APP_USER}))
    assert body["result"]["user"] == f"{APP_USER}@%"
    assert body["result"]["endpoint"] == "writer"
    assert mariadb.connection_ids(APP_USER) == {body["result"]["connection_id"]}
    assert probe.last_log["db_user"] == APP_USER and probe.last_log["auth"] == "password"
    assert APP_PASSWORD not in "".join(probe.raw) + repr(body)


def test_the_default_user_is_db_user(probe: Probe, app_user: str) -> None:
    assert _ok(probe())["result"]["user"] == f"{PROBE_USER}@%"
    assert _ok(probe({"user": PROBE_USER}))["reused"] is True


def test_each_user_keeps_its_own_connection(probe: Probe, app_user: str, mariadb: MariaDBServer) -> None:
    mine = _ok(probe())
    theirs = _ok(probe({"user": APP_USER}))
    mine_again = _ok(probe())
    theirs_again = _ok(probe({"user": APP_USER}))
    assert theirs["reused"] is False  # never the probe user's session
    assert mine_again["reused"] is True and theirs_again["reused"] is True
    assert mine_again["result"]["connection_id"] == mine["result"]["connection_id"]
    assert theirs_again["result"]["connection_id"] == theirs["result"]["connection_id"]
    assert mine_again["result"]["user"] == f"{PROBE_USER}@%"
    assert theirs_again["result"]["user"] == f"{APP_USER}@%"
    assert mariadb.connection_ids(PROBE_USER) == {mine["result"]["connection_id"]}
    assert mariadb.connection_ids(APP_USER) == {theirs["result"]["connection_id"]}


def test_the_secret_is_cached_then_reread_when_the_password_rotates(
    probe: Probe, app_user: str, secrets: Any, mariadb: MariaDBServer
) -> None:
    _ok(probe({"user": APP_USER}))
    # Rotate: the server and the secret get a new password; the cache still holds the old one.
    secrets.put_secret_value(
        SecretId=app_user, SecretString=json.dumps({"username": APP_USER, "password": ROTATED_PASSWORD})
    )
    mariadb.execute(f"ALTER USER '{APP_USER}'@'%%' IDENTIFIED BY %s", (ROTATED_PASSWORD,))
    body = _ok(probe({"user": APP_USER, "fresh": True}))
    assert probe.last_log["secret_refreshed"] is True and probe.last_log["attempts"] == 2
    # Now cached again: a secret changed behind its back is not read within the TTL.
    secrets.put_secret_value(
        SecretId=app_user, SecretString=json.dumps({"username": APP_USER, "password": "not-the-password"})
    )
    again = _ok(probe({"user": APP_USER, "fresh": True}))
    assert probe.last_log["secret_refreshed"] is False and probe.last_log["attempts"] == 1
    assert again["result"]["connection_id"] != body["result"]["connection_id"]
    for secret in (APP_PASSWORD, ROTATED_PASSWORD, "not-the-password"):
        assert secret not in "".join(probe.raw)


def test_the_secret_cache_expires(
    probe: Probe, app_user: str, secrets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_SECRET_TTL_S", "0.2")
    lambda_function.reset_state()
    _ok(probe({"user": APP_USER}))
    secrets.put_secret_value(SecretId=app_user, SecretString=json.dumps({"password": "Expired-Cache-Wrong"}))
    time.sleep(0.3)
    err = _err(probe({"user": APP_USER, "fresh": True}), 500)  # re-read after the TTL: now wrong
    assert err["code"] == 1045 and probe.last_log["secret_refreshed"] is False
    assert "Expired-Cache-Wrong" not in "".join(probe.raw) + repr(err)


def test_a_missing_secret_is_a_clear_500(probe: Probe, app_user: str, secrets: Any) -> None:
    secrets.delete_secret(SecretId=app_user, ForceDeleteWithoutRecovery=True)
    err = _err(probe({"user": APP_USER}), 500)
    assert err["type"] == "secret" and err["retryable"] is False and err["code"] is None
    assert app_user in err["message"] and "ResourceNotFoundException" in err["message"]


def test_a_secret_without_a_password_is_a_clear_500(probe: Probe, app_user: str, secrets: Any) -> None:
    secrets.put_secret_value(SecretId=app_user, SecretString=json.dumps({"username": APP_USER}))
    err = _err(probe({"user": APP_USER}), 500)
    assert err["type"] == "secret" and "'password'" in err["message"] and app_user in err["message"]


def test_an_unknown_user_is_a_clear_500_naming_the_known_ones(probe: Probe, app_user: str) -> None:
    err = _err(probe({"user": "mallory"}), 500)
    assert err["type"] == "config" and err["retryable"] is False
    assert "'mallory'" in err["message"]
    for known in (APP_USER, IAM_USER, PROBE_USER):
        assert known in err["message"]


@pytest.mark.parametrize("user", ["", 7, ["app_reader"]])
def test_a_malformed_user_is_a_clear_500(probe: Probe, app_user: str, user: object) -> None:
    err = _err(probe({"user": user}), 500)
    assert err["type"] == "config" and "'user'" in err["message"] and repr(user) in err["message"]


def test_probe_as_an_iam_user(
    probe: Probe, app_user: str, mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DB_USER stays the password-mode probe user; the event's IAM user gets its own token."""
    clock = Clock()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", clock)
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        region_name=REGION,
    )
    token = str(
        session.client("rds").generate_db_auth_token(
            DBHostname=HOST, Port=mariadb.port, DBUsername=IAM_USER, Region=REGION
        )
    )
    mariadb.set_iam_password(token)
    body = _ok(probe({"user": IAM_USER}))
    assert body["result"]["user"] == f"{IAM_USER}@%"
    assert probe.last_log["auth"] == "iam"
    # A new connection needs a new token (the old one is no longer the password).
    clock.now += datetime.timedelta(minutes=1)
    assert _err(probe({"user": IAM_USER, "fresh": True}), 500)["code"] == 1045
    assert _ok(probe())["result"]["user"] == f"{PROBE_USER}@%"  # the default user is unaffected
    assert token not in "".join(probe.raw)


def test_db_users_entry_for_db_user_wins_over_db_password(
    probe: Probe, app_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack can make the probe's own user a password user reached through its secret."""
    monkeypatch.setenv("DB_USER", APP_USER)
    monkeypatch.setenv("DB_PASSWORD", "decoy-must-not-be-used")
    users = json.loads(os.environ["DB_USERS"])
    assert users[APP_USER]["auth"] == "password"
    lambda_function.reset_state()
    assert _ok(probe())["result"]["user"] == f"{APP_USER}@%"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("not json", "DB_USERS must be a JSON object"),
        ('["a"]', "DB_USERS must be a JSON object"),
        ('{"u": {"auth": "kerberos"}}', "DB_USERS['u'].auth"),
        ('{"u": {"auth": "password", "secret_arn": null}}', "DB_USERS['u'].secret_arn"),
        ('{"u": {"auth": "password", "secret_arn": "hunter2"}}', "DB_USERS['u'].secret_arn"),
        ('{"u": {"auth": "iam", "secret_arn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}}', "null"),
        ('{"u": "iam"}', "DB_USERS['u']"),
    ],
)
def test_bad_db_users_is_a_config_error(
    probe: Probe, monkeypatch: pytest.MonkeyPatch, value: str, needle: str
) -> None:
    monkeypatch.setenv("DB_USERS", value)
    err = _err(probe(), 500)
    assert err["type"] == "config" and needle in err["message"]


def test_secrets_manager_unreachable_is_retried_then_503(
    probe: Probe, app_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No route to Secrets Manager (say, a missing VPC endpoint) may heal: 503, retryable, after retries."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://{HOST}:{free_port()}")
    lambda_function.reset_state()
    started = time.perf_counter()
    err = _err(probe({"user": APP_USER}), 503)
    assert err["type"] == "secret" and err["retryable"] is True and app_user in err["message"]
    assert probe.last_log["attempts"] == 5
    assert time.perf_counter() - started < 10
