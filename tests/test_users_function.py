"""The users bootstrap's pure parts: event validation and the SQL it generates.

The IAM statements (``AWSAuthenticationPlugin``) do not exist in MariaDB, so they are checked here,
as generated SQL and as what a converge sends; the rest runs against a real server in
tests/integration/test_users_bootstrap.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pymysql
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambda_src"))

import users_function as uf

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:users/app-AbCdEf"
MASTER = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"


def render(statement: tuple[str, tuple[Any, ...]]) -> str:
    """The statement as the server receives it (pymysql's own escaping)."""
    sql, args = statement
    return sql % tuple(pymysql.converters.escape_item(a, "utf8mb4") for a in args)


def entry(**overrides: Any) -> dict[str, Any]:
    user = {
        "name": "app_ro",
        "privileges": ["SELECT"],
        "database": "appdb",
        "auth": "password",
        "secret_arn": ARN,
    }
    user.update(overrides)
    return user


def event(*users: dict[str, Any], action: str | None = "create") -> dict[str, Any]:
    ev: dict[str, Any] = {"master_secret_arn": MASTER, "users": list(users)}
    if action:
        ev["tf"] = {"action": action, "prev_input": None}
    return ev


# --------------------------------------------------------------------------- generated SQL


def test_iam_user_is_created_with_the_rds_plugin_and_tls_only() -> None:
    user = uf.UserSpec("app_iam", ("SELECT",), "appdb", "iam", None)
    assert render(uf.create_user_sql(user, None)) == (
        "CREATE USER 'app_iam'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL"
    )


def test_switching_a_user_to_iam_uses_the_rds_plugin() -> None:
    assert render(uf.set_iam_sql("app_rw")) == (
        "ALTER USER 'app_rw'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"
    )


def test_password_user_is_tls_only_and_its_password_only_a_parameter() -> None:
    user = uf.UserSpec("app_ro", ("SELECT",), "appdb", "password", ARN)
    sql, args = uf.create_user_sql(user, "s3cret'pw")
    assert "s3cret" not in sql and args[-1] == "s3cret'pw"
    assert render((sql, args)) == "CREATE USER 'app_ro'@'%' IDENTIFIED BY 's3cret\\'pw' REQUIRE SSL"
    assert "s3cret" not in uf.set_password_sql("app_ro", "s3cret")[0]


def test_grant_names_exactly_the_privileges_on_that_database_only() -> None:
    assert render(uf.grant_sql("app_rw", ("SELECT", "INSERT"), "app_db")) == (
        "GRANT SELECT, INSERT ON `app\\_db`.* TO 'app_rw'@'%'"
    )


def test_revoke_refuses_a_privilege_name_that_is_not_a_plain_word() -> None:
    with pytest.raises(uf.BootstrapError, match="unexpected privilege name"):
        uf.revoke_sql("app_ro", ["SELECT ON *.* TO x; --"], "appdb")
    assert render(uf.revoke_sql("app_ro", ["INSERT", "GRANT OPTION"], None)) == (
        "REVOKE INSERT, GRANT OPTION ON *.* FROM 'app_ro'@'%'"
    )


def test_sql_builders_validate_names_themselves() -> None:
    for build in (uf.drop_user_sql, uf.set_iam_sql, uf.require_ssl_sql):
        with pytest.raises(uf.BootstrapError, match="invalid"):
            build("x'@'%' OR 1=1 --")
    with pytest.raises(uf.BootstrapError, match="not allowed"):
        uf.grant_sql("app_ro", ("ALL",), "appdb")
    with pytest.raises(uf.BootstrapError, match="invalid"):
        uf.grant_sql("app_ro", ("SELECT",), "appdb`.* TO x; --")


# --------------------------------------------------------------------------- event validation


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1app",
        "_app",
        "a" * 33,
        "app-ro",
        "app ro",
        "app'ro",
        "x'@'%' IDENTIFIED BY 'p",
        "caf\u00e9",
        None,
        7,
    ],
)
def test_invalid_names_are_refused(name: object) -> None:
    with pytest.raises(uf.BootstrapError, match=r"name .* invalid|must be a string") as info:
        uf.parse_event(event(entry(name=name)))
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["rdsadmin", "rdsrepladmin", "rdsproxyadmin", "root", "Root", "mysql.sys"])
def test_reserved_names_are_refused(name: str) -> None:
    with pytest.raises(uf.BootstrapError, match="reserved"):
        uf.parse_event(event(entry(name=name)))


def test_longest_valid_name_is_accepted() -> None:
    name = "A" + "b1_" * 10 + "c"  # 32 characters
    assert [u.name for u in uf.parse_event(event(entry(name=name))).users] == [name]


def test_names_are_unique_ignoring_case() -> None:
    with pytest.raises(uf.BootstrapError, match="'App_Ro' repeats 'app_ro'"):
        uf.parse_event(event(entry(), entry(name="App_Ro")))


@pytest.mark.parametrize(
    "privilege",
    [
        "ALL",
        "ALL PRIVILEGES",
        "SUPER",
        "GRANT OPTION",
        "FILE",
        "PROCESS",
        "SHUTDOWN",
        "CREATE USER",
        "RELOAD",
        "REPLICATION SLAVE",
        "SELECT, SUPER",
        "SELECT ON *.* TO x",
        "",
        None,
    ],
)
def test_privileges_outside_the_allow_list_are_refused(privilege: object) -> None:
    with pytest.raises(uf.BootstrapError, match="is not allowed") as info:
        uf.parse_event(event(entry(privileges=["SELECT", privilege])))
    assert "'app_ro'" in str(info.value)


def test_every_allowed_privilege_is_accepted_and_normalised() -> None:
    raw = [p.lower().replace(" ", "  ") for p in reversed(uf.ALLOWED_PRIVILEGES)]
    (user,) = uf.parse_event(event(entry(privileges=[*raw, "select"]))).users
    assert user.privileges == uf.ALLOWED_PRIVILEGES


def test_empty_privileges_are_refused() -> None:
    with pytest.raises(uf.BootstrapError, match="non-empty list"):
        uf.parse_event(event(entry(privileges=[])))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auth": "iam"}, "auth 'iam' takes no secret_arn"),
        ({"secret_arn": None}, "auth 'password' needs secret_arn"),
        ({"secret_arn": "users/app"}, "auth 'password' needs secret_arn"),
        ({"auth": "kerberos"}, "auth must be one of password, iam"),
        ({"database": "mysql"}, "system database"),
        ({"database": "rdsproxy_bootstrap"}, "system database"),
        ({"database": "app`db"}, "database 'app`db' is invalid"),
        ({"password": "x"}, "unknown keys \\['password'\\]"),
    ],
)
def test_entry_errors_name_the_user_and_what_is_allowed(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(uf.BootstrapError, match=message) as info:
        uf.parse_event(event(entry(**overrides)))
    assert "user 'app_ro' (users[0])" in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    bad = {"users": [entry(name="root"), entry(name="ok", privileges=["SUPER"])], "tf": {"action": "rename"}}
    with pytest.raises(uf.BootstrapError) as info:
        uf.parse_event(bad)
    text = str(info.value)
    for part in ("tf.action", "master_secret_arn", "'root'", "'SUPER'"):
        assert part in text


def test_provider_event_shape_is_understood() -> None:
    # terraform-provider-aws invocation.go buildInput: input + {"tf": {"action", "prev_input"}}
    ev = event(entry(), action="update")
    ev["tf"]["prev_input"] = {"master_secret_arn": MASTER, "users": []}
    request = uf.parse_event(ev)
    assert (request.action, request.master_secret_arn) == ("update", MASTER)
    assert uf.parse_event(event(entry(), action=None)).action == "update"
    assert uf.parse_event(event(entry(), action="delete")).action == "delete"


# --------------------------------------------------------------------------- what a converge sends


class RecordingConnection:
    """Answers the converge's reads from tables; records every statement it is sent."""

    def __init__(self, managed: list[str], accounts: list[tuple[str, str, str]]) -> None:
        self.answers: dict[str, list[tuple[Any, ...]]] = {
            "managed_users": [(n,) for n in managed],
            "mysql.user": accounts,
            "SCHEMA_PRIVILEGES": [],
            "USER_PRIVILEGES": [],
        }
        self.sent: list[str] = []
        self._last: list[tuple[Any, ...]] = []

    def cursor(self) -> RecordingConnection:
        return self

    def __enter__(self) -> RecordingConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, args: tuple[Any, ...] | None = None) -> None:
        self.sent.append(render((sql, args)) if args is not None else sql)
        self._last = next(
            (rows for key, rows in self.answers.items() if sql.startswith("SELECT") and key in sql), []
        )

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._last


def test_converge_creates_iam_users_with_the_rds_plugin() -> None:
    conn = RecordingConnection(managed=[], accounts=[])
    run = uf.Run(env=None, conn=conn, secrets=[])  # type: ignore[arg-type]
    run.converge([uf.UserSpec("app_iam", ("SELECT", "INSERT"), "appdb", "iam", None)], "admin")
    assert run.created == ["app_iam"]
    assert conn.sent[-2:] == [
        "CREATE USER 'app_iam'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL",
        "GRANT SELECT, INSERT ON `appdb`.* TO 'app_iam'@'%'",
    ]


def test_converge_moves_a_password_user_to_iam() -> None:
    conn = RecordingConnection(managed=["app_rw"], accounts=[("app_rw", "mysql_native_password", "ANY")])
    run = uf.Run(env=None, conn=conn, secrets=[])  # type: ignore[arg-type]
    run.converge([uf.UserSpec("app_rw", ("SELECT",), "appdb", "iam", None)], "admin")
    assert "ALTER USER 'app_rw'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'" in conn.sent
    assert run.changed["app_rw"][0] == "auth iam"


def test_converge_leaves_an_iam_user_that_is_already_right_alone() -> None:
    conn = RecordingConnection(managed=["app_iam"], accounts=[("app_iam", "AWSAuthenticationPlugin", "ANY")])
    conn.answers["SCHEMA_PRIVILEGES"] = [("'app_iam'@'%'", "appdb", "SELECT", "NO")]
    run = uf.Run(env=None, conn=conn, secrets=[])  # type: ignore[arg-type]
    run.converge([uf.UserSpec("app_iam", ("SELECT",), "appdb", "iam", None)], "admin")
    assert run.left_alone == ["app_iam"] and not run.changed
    assert not [s for s in conn.sent if s.startswith(("ALTER", "GRANT", "REVOKE", "CREATE USER"))]


def test_delete_does_not_validate_the_list_it_releases() -> None:
    request = uf.parse_event(event(entry(name="root", privileges=["SUPER"]), action="delete"))
    assert (request.action, request.users) == ("delete", [])
    with pytest.raises(uf.BootstrapError, match="master_secret_arn"):
        uf.parse_event({"users": [], "tf": {"action": "delete", "prev_input": None}})


def test_redaction_covers_the_sql_and_json_escaped_forms_of_a_password() -> None:
    password = "p'w\\\"x"  # p'w\"x: a quote, a backslash, a double quote
    forms = uf.secret_forms(password)
    sql_form = pymysql.converters.escape_string(password)
    json_form = __import__("json").dumps(password)[1:-1]
    text = f"raw {password} sql '{sql_form}' json \"{json_form}\""
    redacted = uf._redact(text, forms)
    assert password not in redacted and sql_form not in redacted and json_form not in redacted
    assert redacted.count("***") == 3
