"""The users bootstrap against the real MariaDB (TLS) and moto's Secrets Manager in server mode.

Each test starts from a database without managed users or state schema. Every call checks that
neither the answer nor anything printed holds a password the test put into a secret.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import ssl
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.integration.helpers import FakeContext
from tests.integration.mariadb_server import ALT_HOST, HOST, MariaDBServer
from tests.integration.users_support import (
    APP_DB,
    MASTER_PASSWORD,
    USERS_ENV_VARS,
    LocalSecrets,
    prepare_master,
    reset_bootstrap_state,
    users_env,
    users_function,
)

BootstrapError = users_function.BootstrapError
ER_TABLEACCESS_DENIED = 1142


class Bootstrap:
    """Builds events like the DbUsers component, invokes the handler, inspects the server."""

    def __init__(
        self,
        server: MariaDBServer,
        store: LocalSecrets,
        master_arn: str,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        self.caplog = caplog
        self.server = server
        self.store = store
        self.master_arn = master_arn
        self.capsys = capsys
        self.passwords: dict[str, str] = {}
        self.output: list[str] = []

    # event building -----------------------------------------------------------
    def user(
        self,
        name: str,
        privileges: tuple[str, ...] = ("SELECT",),
        database: str = APP_DB,
        password: str | None = None,
    ) -> dict[str, Any]:
        """A password user's entry; its secret (new password unless given) is put in moto."""
        password = password or f"Pw-{name}-{pysecrets.token_hex(8)}"
        self.passwords[name] = password
        arn = self.store.user_secret(name, password, self.server.port)
        return {
            "name": name,
            "privileges": list(privileges),
            "database": database,
            "auth": "password",
            "secret_arn": arn,
        }

    def event(self, users: list[dict[str, Any]], action: str | None, prev: Any = None) -> dict[str, Any]:
        event: dict[str, Any] = {"master_secret_arn": self.master_arn, "users": users}
        if action is not None:
            event["tf"] = {"action": action, "prev_input": prev}
        return event

    # invoking -----------------------------------------------------------------
    def _scan(self, text: str) -> None:
        text += self.caplog.text  # boto3, pymysql and anything else that logs
        for password in [*self.store.passwords, MASTER_PASSWORD]:
            assert password not in text, "a password leaked into the answer, an error or the logs"

    def __call__(self, users: list[dict[str, Any]], action: str | None = "create") -> dict[str, Any]:
        self.capsys.readouterr()
        result = users_function.lambda_handler(self.event(users, action), FakeContext())
        out = self.capsys.readouterr()
        self.output.append(out.out + out.err)
        self._scan(json.dumps(result) + out.out + out.err)
        log = json.loads(out.out.strip().splitlines()[-1])
        assert log["ok"] is True and log["created"] == result["created"]
        return result

    def fails(self, users: list[dict[str, Any]], action: str | None = "create") -> str:
        self.capsys.readouterr()
        with pytest.raises(BootstrapError) as info:
            users_function.lambda_handler(self.event(users, action), FakeContext())
        out = self.capsys.readouterr()
        message = str(info.value)
        self._scan(message + out.out + out.err)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        return message

    # the server -----------------------------------------------------------------
    def accounts(self) -> set[str]:
        return {str(r[0]) for r in self.server.execute("SELECT User FROM mysql.user WHERE Host = '%'")}

    def grants(self, name: str) -> set[tuple[str, str]]:
        rows = self.server.execute(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %s",
            (f"'{name}'@'%'",),
        )
        return {(str(a), str(b)) for a, b in rows}

    def login(self, name: str, database: str | None = APP_DB) -> pymysql.connections.Connection:
        ctx = ssl.create_default_context(cafile=self.server.ca_path)
        return pymysql.connect(
            host=HOST,
            port=self.server.port,
            user=name,
            password=self.passwords[name],
            database=database,
            ssl=ctx,
            autocommit=True,
        )


@pytest.fixture(scope="module")
def local_secrets() -> Iterator[LocalSecrets]:
    store = LocalSecrets()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def boot(
    mariadb: MariaDBServer,
    local_secrets: LocalSecrets,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Bootstrap]:
    for name in USERS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in users_env(mariadb, local_secrets).items():
        monkeypatch.setenv(name, value)
    master_arn = prepare_master(mariadb, local_secrets)
    mariadb.execute(f"CREATE TABLE IF NOT EXISTS `{APP_DB}`.t (id INT PRIMARY KEY)")
    reset_bootstrap_state(mariadb)
    users_function.reset_state()
    caplog.set_level("INFO")  # the most Lambda logs by default (JSON format)
    yield Bootstrap(mariadb, local_secrets, master_arn, capsys, caplog)
    reset_bootstrap_state(mariadb)
    mariadb.execute("DROP USER IF EXISTS 'legacy'@'%'")
    users_function.reset_state()


# --------------------------------------------------------------------------- converging


def test_converge_from_nothing_creates_tls_only_users_with_their_grants(boot: Bootstrap) -> None:
    ro = boot.user("app_ro")
    rw = boot.user("app_rw", ("SELECT", "INSERT", "UPDATE", "DELETE"))

    result = boot([ro, rw])

    assert result["created"] == ["app_ro", "app_rw"]
    assert (result["changed"], result["dropped"], result["left_alone"]) == ({}, [], [])
    assert result["live_invocations"] == 1
    assert boot.grants("app_ro") == {(APP_DB, "SELECT")}
    assert boot.grants("app_rw") == {(APP_DB, p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE")}
    rows = boot.server.execute("SELECT User, ssl_type FROM mysql.user WHERE User LIKE 'app%'")
    ssl_types = {str(user): str(kind) for user, kind in rows}
    assert ssl_types == {"app_ro": "ANY", "app_rw": "ANY"}  # REQUIRE SSL
    with boot.login("app_rw") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("DELETE FROM t")


def test_rerun_is_a_no_op(boot: Bootstrap) -> None:
    users = [boot.user("app_ro"), boot.user("app_rw", ("SELECT", "INSERT"))]
    boot(users)
    before = (boot.grants("app_ro"), boot.grants("app_rw"))

    result = boot(users, action="update")

    assert (result["created"], result["changed"], result["dropped"]) == ([], {}, [])
    assert result["left_alone"] == ["app_ro", "app_rw"]
    assert (boot.grants("app_ro"), boot.grants("app_rw")) == before
    assert result["live_invocations"] == 1  # update leaves the count alone


def test_adding_a_user_creates_only_that_user(boot: Bootstrap) -> None:
    a = boot.user("app_a")
    boot([a])

    result = boot([a, boot.user("app_b")], action="update")

    assert (result["created"], result["left_alone"], result["changed"]) == (["app_b"], ["app_a"], {})
    with boot.login("app_b") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t")


def test_narrowed_privileges_are_revoked_on_the_server(boot: Bootstrap) -> None:
    boot([boot.user("app_rw", ("SELECT", "INSERT"), password="Pw-narrow-1")])
    with boot.login("app_rw") as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (7)")  # allowed before

    result = boot([boot.user("app_rw", ("SELECT",), password="Pw-narrow-1")], action="update")

    assert result["changed"] == {"app_rw": [f"revoke INSERT on {APP_DB}"]}
    with boot.login("app_rw") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t")  # still allowed
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cur.execute("INSERT INTO t VALUES (8)")
    assert denied.value.args[0] == ER_TABLEACCESS_DENIED
    boot.server.execute(f"DELETE FROM `{APP_DB}`.t")


def test_privileges_granted_by_hand_are_revoked(boot: Bootstrap) -> None:
    ro = boot.user("app_ro")
    boot([ro])
    boot.server.execute("CREATE DATABASE IF NOT EXISTS otherdb")
    boot.server.execute(f"GRANT INSERT ON `{APP_DB}`.* TO 'app_ro'@'%'")
    boot.server.execute("GRANT SELECT ON otherdb.* TO 'app_ro'@'%'")
    boot.server.execute("GRANT PROCESS ON *.* TO 'app_ro'@'%'")

    result = boot([ro], action="update")

    assert result["changed"] == {
        "app_ro": ["revoke SELECT on otherdb", f"revoke INSERT on {APP_DB}", "revoke PROCESS on *.*"]
    }
    assert boot.grants("app_ro") == {(APP_DB, "SELECT")}
    assert str(boot.server.execute("SHOW GRANTS FOR 'app_ro'@'%'")[0][0]).startswith("GRANT USAGE ON *.*")


def test_tls_requirement_dropped_by_hand_is_restored(boot: Bootstrap) -> None:
    ro = boot.user("app_ro")
    boot([ro])
    boot.server.execute("ALTER USER 'app_ro'@'%' REQUIRE NONE")

    result = boot([ro], action="update")

    # The server here refuses plain connections anyway (require_secure_transport), so the account's own
    # REQUIRE SSL, which RDS does not enforce server-wide by default, is checked where MySQL keeps it.
    assert result["changed"] == {"app_ro": ["require ssl"]}
    rows = boot.server.execute("SELECT ssl_type FROM mysql.user WHERE User = 'app_ro'")
    assert [str(r[0]) for r in rows] == ["ANY"]
    assert boot([ro], action="update")["left_alone"] == ["app_ro"]


def test_moving_a_user_to_another_database_moves_its_grants(boot: Bootstrap) -> None:
    boot.server.execute("CREATE DATABASE IF NOT EXISTS other_db")
    boot([boot.user("app_ro", password="Pw-move-1")])

    result = boot([boot.user("app_ro", database="other_db", password="Pw-move-1")], action="update")

    assert result["changed"] == {"app_ro": ["grant SELECT on other_db", f"revoke SELECT on {APP_DB}"]}
    assert boot.grants("app_ro") == {("other\\_db", "SELECT")}


def test_grant_on_a_database_with_underscore_opens_only_that_database(boot: Bootstrap) -> None:
    # '_' is a wildcard in GRANT ... ON `db`.*; unescaped, app_db would also open appXdb.
    boot.server.execute("CREATE DATABASE IF NOT EXISTS other_db")
    boot.server.execute("CREATE DATABASE IF NOT EXISTS otherXdb")
    boot([boot.user("app_ro", database="other_db")])

    with (
        boot.login("app_ro", database="other_db") as conn,
        conn.cursor() as cur,
        pytest.raises(pymysql.err.OperationalError) as denied,
    ):
        cur.execute("USE otherXdb")
    assert denied.value.args[0] == 1044


def test_changed_secret_sets_the_password_once(boot: Bootstrap) -> None:
    boot([boot.user("app_ro")])
    rotated = boot.user("app_ro")  # new password in the same secret

    first = boot([rotated], action="update")
    second = boot([rotated], action="update")

    assert first["changed"] == {"app_ro": ["password"]}
    assert second["changed"] == {} and second["left_alone"] == ["app_ro"]
    boot.login("app_ro").close()  # the new password works


def test_password_with_quotes_and_backslashes_is_set_exactly(boot: Bootstrap) -> None:
    entry = boot.user("app_ro", password="Pw'q\"b\\s%%_1")

    boot([entry])
    again = boot([entry], action="update")

    boot.login("app_ro").close()  # the server holds exactly the secret's password
    assert again["changed"] == {}


def test_removed_user_is_dropped(boot: Bootstrap) -> None:
    a, b = boot.user("app_a"), boot.user("app_b")
    boot([a, b])

    result = boot([a], action="update")

    assert result["dropped"] == ["app_b"]
    assert "app_b" not in boot.accounts() and "app_a" in boot.accounts()


# --------------------------------------------------------------------------- what it must not touch


def test_user_it_did_not_create_survives(boot: Bootstrap) -> None:
    boot.server.execute("CREATE USER 'legacy'@'%' IDENTIFIED BY 'legacy-pw'")
    boot.server.execute(f"GRANT ALL ON `{APP_DB}`.* TO 'legacy'@'%'")
    legacy_grants = boot.grants("legacy")

    boot([boot.user("app_ro")])
    boot([], action="update")
    boot([], action="delete")

    assert "legacy" in boot.accounts()
    assert boot.grants("legacy") == legacy_grants


def test_entry_naming_an_unmanaged_user_is_refused(boot: Bootstrap) -> None:
    boot.server.execute("CREATE USER 'legacy'@'%' IDENTIFIED BY 'legacy-pw'")

    message = boot.fails([boot.user("app_ro"), boot.user("legacy", ("SELECT", "INSERT"))])

    assert "'legacy'" in message and "not created by this bootstrap" in message
    assert boot.grants("legacy") == set()
    assert "app_ro" not in boot.accounts()  # refused before any change


def test_master_user_cannot_be_an_entry(boot: Bootstrap) -> None:
    message = boot.fails([boot.user("bootstrap_admin")])
    assert "'bootstrap_admin'" in message and "master user" in message


def test_name_built_to_inject_sql_is_refused(boot: Bootstrap) -> None:
    evil = boot.user("x")
    evil["name"] = "x'@'%' IDENTIFIED BY 'p'; DROP DATABASE testdb; --"
    before = boot.accounts()

    message = boot.fails([evil])

    assert evil["name"] in message and "invalid" in message
    assert boot.accounts() == before
    assert boot.server.execute("SHOW DATABASES LIKE 'testdb'")


def test_privilege_outside_the_allow_list_is_refused(boot: Bootstrap) -> None:
    message = boot.fails([boot.user("app_ro", ("SELECT", "SUPER"))])
    assert "'app_ro'" in message and "'SUPER' is not allowed" in message
    assert "app_ro" not in boot.accounts()


# --------------------------------------------------------------------------- secrets


def test_missing_secret_fails_naming_the_user(boot: Bootstrap) -> None:
    entry = boot.user("app_ro")
    entry["secret_arn"] = entry["secret_arn"].replace("users/app_ro", "users/nobody")

    message = boot.fails([boot.user("app_ok"), entry])

    assert "'app_ro'" in message and "ResourceNotFoundException" in message
    assert not {"app_ro", "app_ok"} & boot.accounts()


def test_secret_of_another_user_fails_naming_the_user(boot: Bootstrap) -> None:
    other = boot.user("app_other")
    entry = boot.user("app_ro")
    entry["secret_arn"] = other["secret_arn"]

    message = boot.fails([entry])

    assert "'app_ro'" in message and "'app_other'" in message


def test_secret_without_password_fails_naming_the_user(boot: Bootstrap) -> None:
    entry = boot.user("app_ro")
    boot.store.put("users/app_ro", {"username": "app_ro", "engine": "mysql"})

    message = boot.fails([entry])

    assert "'app_ro'" in message and "no password" in message


def test_wrong_master_password_fails_without_leaking_it(boot: Bootstrap) -> None:
    boot.store.put("users/bootstrap_admin", {"username": "bootstrap_admin", "password": "Wrong-master-pw-1"})

    message = boot.fails([boot.user("app_ro")])

    assert "master user" in message and "1045" in message


# --------------------------------------------------------------------------- lifecycle


def test_delete_drops_every_managed_user(boot: Bootstrap) -> None:
    users = [boot.user("app_a"), boot.user("app_b"), boot.user("app_c", ("SELECT", "INSERT"))]
    boot(users)

    result = boot(users, action="delete")

    assert result["dropped"] == ["app_a", "app_b", "app_c"]
    assert result["live_invocations"] == 0
    assert not {"app_a", "app_b", "app_c"} & boot.accounts()


def test_a_replaced_invocation_leaves_the_users_in_place(boot: Bootstrap) -> None:
    old = [boot.user("app_a"), boot.user("app_b")]
    new = [old[0], boot.user("app_c")]
    boot(old, action="create")  # Invocation A

    # Replacement, create-before-delete: B's create converges, then A's delete arrives.
    created_b = boot(new, action="create")
    deleted_a = boot(old, action="delete")

    assert created_b["created"] == ["app_c"] and created_b["dropped"] == ["app_b"]
    assert created_b["live_invocations"] == 2
    assert deleted_a["dropped"] == [] and deleted_a["left_alone"] == ["app_a", "app_c"]
    assert deleted_a["live_invocations"] == 1
    assert {"app_a", "app_c"} <= boot.accounts()
    boot.login("app_c").close()

    deleted_b = boot(new, action="delete")

    assert deleted_b["dropped"] == ["app_a", "app_c"] and deleted_b["live_invocations"] == 0
    assert not {"app_a", "app_b", "app_c"} & boot.accounts()


def test_failed_run_does_not_count_as_a_live_invocation(boot: Bootstrap) -> None:
    entry = boot.user("app_ro")
    bad = dict(entry, secret_arn=entry["secret_arn"].replace("app_ro", "nobody"))
    boot.fails([bad], action="create")  # Pulumi records no resource: no delete will come

    boot([entry], action="create")
    result = boot([entry], action="delete")

    assert result["dropped"] == ["app_ro"]


def test_manual_invoke_without_tf_converges_without_counting(boot: Bootstrap) -> None:
    result = boot([boot.user("app_ro")], action=None)
    assert result["action"] == "update" and result["created"] == ["app_ro"]
    assert result["live_invocations"] == 0


# --------------------------------------------------------------------------- TLS and the probe's grant


def test_untrusted_server_certificate_is_refused(boot: Bootstrap, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_CA_BUNDLE", boot.server.other_ca_path)

    message = boot.fails([boot.user("app_ro")])

    assert "cannot connect" in message and "CERTIFICATE_VERIFY_FAILED" in message
    assert "app_ro" not in boot.accounts()


def test_host_name_not_in_the_certificate_is_refused(
    boot: Bootstrap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_HOST", ALT_HOST)  # the server listens there; its certificate does not name it

    message = boot.fails([boot.user("app_ro")])

    assert "cannot connect" in message and "IP address mismatch" in message
    assert "app_ro" not in boot.accounts()


def test_show_view_alone_opens_the_database_for_the_probe_query_and_reads_no_rows(boot: Bootstrap) -> None:
    # The probe user's grant: the least database privilege that lets it open dbName.
    boot([boot.user("probe_min", ("SHOW VIEW",))])

    with boot.login("probe_min", database=APP_DB) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1, CONNECTION_ID(), CURRENT_USER(), @@read_only, @@server_id")
        assert cur.fetchone()[2] == "probe_min@%"  # type: ignore[index]
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cur.execute("SELECT * FROM t")
    assert denied.value.args[0] == ER_TABLEACCESS_DENIED
