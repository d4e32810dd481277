"""Bootstrap Lambda: converge the MySQL users of an RDS database to a list (``DbUsers``).

RDS has no API for MySQL users, so this function, run by ``aws.lambda_.Invocation`` with
``lifecycle_scope="CRUD"``, connects to the database directly (not through the proxy) as the
master user and creates, alters and drops the users the stack declares.

Contract (kept stable: the component sends exactly this; the handler is
``users_function.lambda_handler``; the zip holds this module and pymysql, boto3 comes with the runtime)
------------------------------------------------------------------------------------------------------
Environment:
    DB_HOST       database host name (required; the certificate must name it)
    DB_PORT       default 3306
    DB_CA_BUNDLE  optional PEM file; default is the system trust store

Event (the Invocation input; Pulumi stores it in state, so it never holds a password)::

    {"master_secret_arn": "arn:aws:secretsmanager:...",
     "users": [{"name": "app_ro", "privileges": ["SELECT"], "database": "appdb",
                "auth": "password", "secret_arn": "arn:aws:secretsmanager:..."},
               {"name": "app_iam", "privileges": ["SELECT", "INSERT"], "database": "appdb",
                "auth": "iam", "secret_arn": null}],
     "tf": {"action": "create" | "update" | "delete", "prev_input": {...} | null}}

    ``tf`` is added by the provider (lifecycle_scope CRUD; key ``terraform_key``, default "tf"):
    terraform-provider-aws internal/service/lambda/invocation.go, ``buildInput``:
    ``newInputMap["tf"] = {"action": action, "prev_input": oldInputMap}``. prev_input is null on
    create, the previous input on update, and on delete the stored input itself (GetChange on a
    resource being destroyed returns the state value on both sides). Without ``tf`` (a manual
    invoke) the action is ``update``. prev_input is not needed: the function keeps its own record.

Secrets (Secrets Manager, read by ARN at run time): ``{"username", "password", "engine", "host",
"port", "dbname"}``; a user's secret must name that user; the master secret needs username/password.

Response (also the Invocation's ``result``)::

    {"action": "create", "live_invocations": 1,
     "created": ["app_ro"], "changed": {"app_rw": ["password", "revoke INSERT on appdb"]},
     "dropped": ["old_user"], "left_alone": ["app_iam"]}

Any failure raises ``BootstrapError`` naming the user and the reason (a returned error body would
not fail the Invocation: the provider only fails on ``FunctionError``). Nothing returned, raised or
logged contains a password.

Behaviour:
    * Users are ``'<name>'@'%'``, created ``REQUIRE SSL``; password users get the password from
      their secret, IAM users ``IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'``.
    * The users it created are recorded in ``rdsproxy_bootstrap.managed_users``; it never alters or
      drops any other user, and an entry naming an existing unmanaged user is an error.
    * A password is set only if a TLS login with the secret's password fails, so a re-run changes
      nothing. Exactly the listed privileges on ``<database>.*`` are granted; the rest (other
      databases, global privileges, GRANT OPTION) is revoked.
    * ``rdsproxy_bootstrap.invocations`` counts live Invocations: create +1, delete -1, update 0,
      committed only when the run succeeded. Pulumi replaces create-before-delete, so the old
      Invocation's delete arrives after the new one's create: only a delete that brings the count
      to 0 drops the managed users.
    * Runs are serialised with ``GET_LOCK`` (two stacks' Invocations may overlap).

Tests: call :func:`reset_state` to forget the cached SSL context and Secrets Manager client.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql

# --------------------------------------------------------------------------- vocabulary

ACTIONS = ("create", "update", "delete")
AUTH_KINDS = ("password", "iam")
USER_KEYS = frozenset({"name", "privileges", "database", "auth", "secret_arn"})

#: MySQL user names are at most 32 characters (since 5.7.8); a letter first keeps them readable.
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
#: Database names we grant on: no quoting tricks possible, at most 64 characters.
DATABASE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
#: Privilege names as the server reports them (for REVOKE of what we did not grant).
SERVER_PRIVILEGE_RE = re.compile(r"[A-Z][A-Z ]{0,40}")

#: Table/routine privileges at database level, in the order GRANT statements list them.
ALLOWED_PRIVILEGES = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
    "REFERENCES",
)
_PRIVILEGE_ORDER = {p: i for i, p in enumerate(ALLOWED_PRIVILEGES)}

#: Accounts RDS or MySQL own; ``mysql.*`` (mysql.sys, mysql.session, ...) is refused by prefix.
RESERVED_NAMES = frozenset({"rdsadmin", "rdsrepladmin", "rdsproxyadmin", "root"})
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})

STATE_SCHEMA = "rdsproxy_bootstrap"
LOCK_NAME = "rdsproxy_bootstrap"
LOCK_TIMEOUT_S = 60
HOST = "%"
IAM_PLUGIN = "AWSAuthenticationPlugin"
#: MySQL/MariaDB ER_ACCESS_DENIED_ERROR: what a login with a wrong password gets.
ACCESS_DENIED = 1045
#: Threads for secret reads and test logins: each is one round trip; 8 keeps the DB's connection
#: count and the Secrets Manager request rate modest.
PARALLELISM = 8


class BootstrapError(Exception):
    """A run failed; the message names the user (if any) and why, never a password."""


# --------------------------------------------------------------------------- container state

_ssl_ctx: ssl.SSLContext | None = None
_ssl_ctx_key: str | None = None
_secrets_client: Any = None


def reset_state() -> None:
    """Test hook: forget the SSL context and the Secrets Manager client (as in a new container)."""
    global _ssl_ctx, _ssl_ctx_key, _secrets_client
    _ssl_ctx = None
    _ssl_ctx_key = None
    _secrets_client = None


# --------------------------------------------------------------------------- the event


class UserSpec:
    """One validated entry of ``users``."""

    __slots__ = ("auth", "database", "name", "privileges", "secret_arn")

    def __init__(
        self, name: str, privileges: tuple[str, ...], database: str, auth: str, secret_arn: str | None
    ) -> None:
        self.name = name
        self.privileges = privileges
        self.database = database
        self.auth = auth
        self.secret_arn = secret_arn


class Request:
    """The validated event."""

    def __init__(self, action: str, master_secret_arn: str, users: list[UserSpec]) -> None:
        self.action = action
        self.master_secret_arn = master_secret_arn
        self.users = users


def _is_arn(value: object) -> bool:
    return isinstance(value, str) and value.startswith("arn:") and len(value) <= 2048


def check_name(name: object) -> str | None:
    """Why ``name`` cannot be a managed user name (None if it can)."""
    if not isinstance(name, str):
        return f"name must be a string, got {name!r}"
    if name.lower() in RESERVED_NAMES or name.lower().startswith("mysql."):
        return f"name {name!r} is reserved (rdsadmin, rdsrepladmin, rdsproxyadmin, root, mysql.*)"
    if not NAME_RE.fullmatch(name):
        return f"name {name!r} is invalid: a letter, then letters, digits or '_', at most 32 characters"
    return None


def normalise_privileges(raw: object) -> tuple[tuple[str, ...], list[str]]:
    """The privileges in canonical order, and the problems found."""
    if not isinstance(raw, list) or not raw:
        return (), [f"privileges must be a non-empty list, got {raw!r}"]
    found: set[str] = set()
    problems: list[str] = []
    for item in raw:
        canon = " ".join(item.upper().split()) if isinstance(item, str) else None
        if canon in _PRIVILEGE_ORDER:
            found.add(canon)
        else:
            problems.append(
                f"privilege {item!r} is not allowed; allowed: {', '.join(ALLOWED_PRIVILEGES)}"
                " (never ALL, GRANT OPTION or administrative privileges)"
            )
    return tuple(sorted(found, key=_PRIVILEGE_ORDER.__getitem__)), problems


def parse_event(event: object) -> Request:
    """Validate the whole event; one BootstrapError listing every problem."""
    if not isinstance(event, dict):
        raise BootstrapError(f"event must be a JSON object, got {type(event).__name__}")
    problems: list[str] = []
    action = "update"
    tf = event.get("tf")
    if tf is not None:
        if not isinstance(tf, dict) or tf.get("action") not in ACTIONS:
            problems.append(f"tf.action must be one of {', '.join(ACTIONS)}, got {tf!r}")
        else:
            action = str(tf["action"])
    master = event.get("master_secret_arn")
    if not _is_arn(master):
        problems.append(f"master_secret_arn must be a Secrets Manager ARN, got {master!r}")
    unknown = sorted(set(event) - {"master_secret_arn", "users", "tf"})
    if unknown:
        problems.append(f"unknown event keys {unknown}; allowed: master_secret_arn, users, tf")
    raw_users = event.get("users", [])
    users: list[UserSpec] = []
    if action == "delete":
        # A delete releases whatever this Invocation held; its list is not used, so an entry that
        # became invalid (a failed update) must not block `pulumi destroy`.
        raw_users = []
    if not isinstance(raw_users, list):
        problems.append(f"users must be a list, got {type(raw_users).__name__}")
        raw_users = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(raw_users):
        if not isinstance(entry, dict):
            problems.append(f"users[{i}] must be an object, got {entry!r}")
            continue
        name = entry.get("name")
        where = f"user {name!r} (users[{i}])"
        errs: list[str] = []
        extra = sorted(set(entry) - USER_KEYS)
        if extra:
            errs.append(f"unknown keys {extra}; allowed: {', '.join(sorted(USER_KEYS))}")
        why = check_name(name)
        if why:
            errs.append(why)
        elif str(name).lower() in seen:
            errs.append(f"name {name!r} repeats {seen[str(name).lower()]!r} (names are unique ignoring case)")
        else:
            seen[str(name).lower()] = str(name)
        privileges, perrs = normalise_privileges(entry.get("privileges"))
        errs += perrs
        database = entry.get("database")
        if not isinstance(database, str) or not DATABASE_RE.fullmatch(database):
            errs.append(
                f"database {database!r} is invalid: a letter, then letters, digits or '_', at most 64"
            )
        elif database.lower() in SYSTEM_DATABASES or database.lower() == STATE_SCHEMA:
            errs.append(f"database {database!r} is a system database")
        auth = entry.get("auth")
        secret_arn = entry.get("secret_arn")
        if auth not in AUTH_KINDS:
            errs.append(f"auth must be one of {', '.join(AUTH_KINDS)}, got {auth!r}")
        elif auth == "password" and not _is_arn(secret_arn):
            errs.append(f"auth 'password' needs secret_arn (a Secrets Manager ARN), got {secret_arn!r}")
        elif auth == "iam" and secret_arn is not None:
            errs.append("auth 'iam' takes no secret_arn (IAM users have no password)")
        if errs:
            problems += [f"{where}: {e}" for e in errs]
        else:
            users.append(UserSpec(str(name), privileges, str(database), str(auth), secret_arn))
    if problems:
        raise BootstrapError("invalid event: " + "; ".join(problems))
    return Request(action, str(master), users)


# --------------------------------------------------------------------------- SQL (pure)
#
# User names travel as driver-escaped string literals ('name'@'%'), after validation; database
# names, which cannot be parameters, only after DATABASE_RE. Statements are (sql, args) pairs
# with args always a tuple, so a literal % is written %%.

Statement = tuple[str, tuple[Any, ...]]


def grant_pattern(database: str) -> str:
    """The database as written in GRANT: '_' is a wildcard there and must be escaped."""
    if not DATABASE_RE.fullmatch(database):
        raise BootstrapError(f"database {database!r} is invalid")
    return database.replace("_", "\\_")


def _quote_ident(pattern: str) -> str:
    return "`" + pattern.replace("`", "``") + "`"


def _account(name: str) -> tuple[str, str]:
    why = check_name(name)
    if why:
        raise BootstrapError(f"user {name!r}: {why}")
    return (name, HOST)


def create_user_sql(user: UserSpec, password: str | None) -> Statement:
    if user.auth == "iam":
        return (
            f"CREATE USER %s@%s IDENTIFIED WITH {IAM_PLUGIN} AS 'RDS' REQUIRE SSL",
            _account(user.name),
        )
    return ("CREATE USER %s@%s IDENTIFIED BY %s REQUIRE SSL", (*_account(user.name), password))


def set_password_sql(name: str, password: str) -> Statement:
    return ("ALTER USER %s@%s IDENTIFIED BY %s", (*_account(name), password))


def set_iam_sql(name: str) -> Statement:
    return (f"ALTER USER %s@%s IDENTIFIED WITH {IAM_PLUGIN} AS 'RDS'", _account(name))


def require_ssl_sql(name: str) -> Statement:
    return ("ALTER USER %s@%s REQUIRE SSL", _account(name))


def grant_sql(name: str, privileges: tuple[str, ...], database: str) -> Statement:
    for p in privileges:
        if p not in _PRIVILEGE_ORDER:
            raise BootstrapError(f"user {name!r}: privilege {p!r} is not allowed")
    db = _quote_ident(grant_pattern(database))
    return (f"GRANT {', '.join(privileges)} ON {db}.* TO %s@%s", _account(name))


def revoke_sql(name: str, privileges: list[str], pattern: str | None) -> Statement:
    """Revoke privileges the server reports (``pattern`` as stored; None for global ones)."""
    for p in privileges:
        if not SERVER_PRIVILEGE_RE.fullmatch(p):
            raise BootstrapError(f"user {name!r}: unexpected privilege name {p!r} from the server")
    target = "*.*" if pattern is None else f"{_quote_ident(pattern)}.*"
    return (f"REVOKE {', '.join(privileges)} ON {target} FROM %s@%s", _account(name))


def drop_user_sql(name: str) -> Statement:
    return ("DROP USER IF EXISTS %s@%s", _account(name))


# --------------------------------------------------------------------------- I/O


def _log(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying context (certificate and host name), kept for the container's life."""
    global _ssl_ctx, _ssl_ctx_key
    key = ca_bundle or ""
    if _ssl_ctx is None or _ssl_ctx_key != key:
        try:
            ctx = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise BootstrapError(f"cannot load DB_CA_BUNDLE {ca_bundle!r}: {exc}") from None
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _ssl_ctx, _ssl_ctx_key = ctx, key
    return _ssl_ctx


class Env:
    def __init__(self) -> None:
        self.host = os.environ.get("DB_HOST", "").strip()
        if not self.host:
            raise BootstrapError("DB_HOST is not set")
        raw = os.environ.get("DB_PORT", "") or "3306"
        try:
            self.port = int(raw)
        except ValueError:
            raise BootstrapError(f"DB_PORT must be an integer, got {raw!r}") from None
        if not 0 < self.port < 65536:
            raise BootstrapError(f"DB_PORT out of range: {self.port}")
        self.ca_bundle = os.environ.get("DB_CA_BUNDLE") or None


def _secrets() -> Any:
    global _secrets_client
    if _secrets_client is None:
        import boto3

        # The default way, so AWS_ENDPOINT_URL_SECRETS_MANAGER (tests, local runs) applies.
        _secrets_client = boto3.client("secretsmanager")
    return _secrets_client


def read_secret(arn: str, whose: str, secrets: list[str]) -> dict[str, Any]:
    """The secret's JSON; its password is added to ``secrets`` (for redaction) at once."""
    try:
        raw = _secrets().get_secret_value(SecretId=arn)["SecretString"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise BootstrapError(f"{whose}: cannot read secret {arn}: {code}") from None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise BootstrapError(f"{whose}: secret {arn} is not a JSON object") from None
    password = value.get("password")
    if isinstance(password, str) and password:
        secrets.extend(secret_forms(password))
    else:
        raise BootstrapError(f"{whose}: secret {arn} has no password")
    if not isinstance(value.get("username"), str) or not value["username"]:
        raise BootstrapError(f"{whose}: secret {arn} has no username")
    return value


def _connect(env: Env, user: str, password: str, timeout: float = 10.0) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=env.host,
        port=env.port,
        user=user,
        password=password,
        ssl=ssl_context(env.ca_bundle),  # an SSLContext: TLS required, verified
        connect_timeout=timeout,
        read_timeout=120,
        write_timeout=120,
        autocommit=True,
        charset="utf8mb4",
    )


def _password_works(env: Env, name: str, password: str) -> bool:
    """Whether ``name`` can log in (over TLS) with ``password``; other failures raise."""
    try:
        conn = _connect(env, name, password, timeout=5.0)
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == ACCESS_DENIED:
            return False
        raise
    conn.close()
    return True


# --------------------------------------------------------------------------- the run


class Run:
    """One invocation against one master connection."""

    def __init__(self, env: Env, conn: pymysql.connections.Connection, secrets: list[str]) -> None:
        self.env = env
        self.conn = conn
        self.secrets = secrets
        self.created: list[str] = []
        self.changed: dict[str, list[str]] = {}
        self.dropped: list[str] = []
        self.left_alone: list[str] = []

    def sql(self, statement: Statement | str, who: str | None = None) -> list[tuple[Any, ...]]:
        sql, args = (statement, None) if isinstance(statement, str) else statement
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except pymysql.err.MySQLError as exc:
            what = f"user {who!r}: " if who else ""
            verb = sql.split(" ", 2)[:2]
            raise BootstrapError(f"{what}{' '.join(verb)} failed: {exc.args}") from None

    # state ------------------------------------------------------------------
    def lock(self) -> None:
        got = self.sql(("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, LOCK_TIMEOUT_S)))
        if not got or got[0][0] != 1:
            raise BootstrapError(
                f"another bootstrap run holds lock {LOCK_NAME!r} for over {LOCK_TIMEOUT_S} s"
            )

    def ensure_state(self) -> None:
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{STATE_SCHEMA}`")
        self.sql(
            f"CREATE TABLE IF NOT EXISTS `{STATE_SCHEMA}`.managed_users ("
            " name VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,"
            " created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB"
        )
        self.sql(
            f"CREATE TABLE IF NOT EXISTS `{STATE_SCHEMA}`.invocations ("
            " id TINYINT PRIMARY KEY, live INT NOT NULL) ENGINE=InnoDB"
        )
        self.sql(f"INSERT IGNORE INTO `{STATE_SCHEMA}`.invocations (id, live) VALUES (1, 0)")

    def managed(self) -> set[str]:
        return {str(r[0]) for r in self.sql(f"SELECT name FROM `{STATE_SCHEMA}`.managed_users")}

    def record(self, names: list[str]) -> None:
        if names:
            values = ", ".join(["(%s)"] * len(names))
            self.sql(
                (f"INSERT IGNORE INTO `{STATE_SCHEMA}`.managed_users (name) VALUES {values}", tuple(names))
            )

    def forget(self, names: list[str]) -> None:
        if names:
            marks = ", ".join(["%s"] * len(names))
            self.sql((f"DELETE FROM `{STATE_SCHEMA}`.managed_users WHERE name IN ({marks})", tuple(names)))

    def count_invocation(self, delta: int) -> int:
        """Apply ``delta`` to the live count in one transaction: the last step of a successful run."""
        try:
            self.conn.begin()
            with self.conn.cursor() as cur:
                cur.execute(f"SELECT live FROM `{STATE_SCHEMA}`.invocations WHERE id = 1 FOR UPDATE")
                row = cur.fetchone()
                live = max(0, (int(row[0]) if row else 0) + delta)
                cur.execute(f"UPDATE `{STATE_SCHEMA}`.invocations SET live = %s WHERE id = 1", (live,))
            self.conn.commit()
        except pymysql.err.MySQLError as exc:
            self.conn.rollback()
            raise BootstrapError(f"cannot record the invocation count: {exc.args}") from None
        return live

    def live(self) -> int:
        rows = self.sql(f"SELECT live FROM `{STATE_SCHEMA}`.invocations WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    # server facts ------------------------------------------------------------
    def accounts(self) -> dict[str, tuple[str, str]]:
        """``'<name>'@'%'`` accounts on the server: name -> (auth plugin, ssl_type)."""
        rows = self.sql(("SELECT User, plugin, ssl_type FROM mysql.user WHERE Host = %s", (HOST,)))
        return {str(r[0]): (str(r[1] or ""), str(r[2] or "")) for r in rows}

    def privileges(self, names: set[str]) -> tuple[dict[str, dict[str, set[str]]], dict[str, set[str]]]:
        """Database-level (name -> stored pattern -> privileges) and global privileges of ``names``."""
        by_grantee = {f"'{n}'@'{HOST}'": n for n in names}
        schema: dict[str, dict[str, set[str]]] = {}
        rows = self.sql(
            "SELECT GRANTEE, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES"
        )
        for grantee, pattern, priv, grantable in rows:
            name = by_grantee.get(str(grantee))
            if name is None:
                continue
            privs = schema.setdefault(name, {}).setdefault(str(pattern), set())
            privs.add(str(priv))
            if str(grantable) == "YES":
                privs.add("GRANT OPTION")
        glob: dict[str, set[str]] = {}
        rows = self.sql(
            "SELECT GRANTEE, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES"
        )
        for grantee, priv, grantable in rows:
            name = by_grantee.get(str(grantee))
            if name is None:
                continue
            privs = glob.setdefault(name, set())
            if str(priv) != "USAGE":
                privs.add(str(priv))
            if str(grantable) == "YES":
                privs.add("GRANT OPTION")
        return schema, glob

    # converge ----------------------------------------------------------------
    def converge(self, users: list[UserSpec], master_user: str) -> None:
        managed = self.managed()
        accounts = self.accounts()
        problems: list[str] = []
        for u in users:
            if u.name == master_user:
                problems.append(f"user {u.name!r} is the master user; the bootstrap never manages it")
            elif u.name in accounts and u.name not in managed:
                problems.append(
                    f"user {u.name!r} already exists on the server and was not created by this bootstrap;"
                    " refusing to take it over (drop or rename it, or choose another name)"
                )
        if problems:
            raise BootstrapError("; ".join(problems))
        # Every secret is read before the first change, so a bad one changes nothing.
        password_users = [u for u in users if u.auth == "password"]
        if password_users:
            _secrets()  # created before the threads: boto3's default session is not thread-safe
        passwords = dict(_parallel(self._password_of, password_users))
        # Whether each existing password user's password still works (a TLS login each).
        to_test = [u for u in users if u.name in passwords and u.name in accounts]
        to_test = [u for u in to_test if accounts[u.name][0] != IAM_PLUGIN]
        works = dict(_parallel(lambda u: (u.name, self._login_works(u.name, passwords[u.name])), to_test))

        present = {u.name for u in users if u.name in accounts}
        schema_privs, global_privs = self.privileges(present)
        # Recorded first: a run that dies before its CREATE USER leaves a record of a missing user
        # (recreated next time), never an unrecorded user that later runs would refuse as foreign.
        self.record(sorted(u.name for u in users if u.name not in accounts))
        for u in sorted(users, key=lambda s: s.name):
            if u.name not in accounts:
                self.sql(create_user_sql(u, passwords.get(u.name)), u.name)
                self.sql(grant_sql(u.name, u.privileges, u.database), u.name)
                self.created.append(u.name)
                continue
            changes = self._align(
                u,
                accounts[u.name],
                passwords.get(u.name),
                works.get(u.name, True),
                schema_privs,
                global_privs,
            )
            if changes:
                self.changed[u.name] = changes
            else:
                self.left_alone.append(u.name)
        self.drop(sorted(managed - {u.name for u in users}))

    def _password_of(self, u: UserSpec) -> tuple[str, str]:
        assert u.secret_arn is not None
        secret = read_secret(u.secret_arn, f"user {u.name!r}", self.secrets)
        if secret["username"] != u.name:
            raise BootstrapError(f"user {u.name!r}: secret {u.secret_arn} is for user {secret['username']!r}")
        return u.name, str(secret["password"])

    def _login_works(self, name: str, password: str) -> bool:
        try:
            return _password_works(self.env, name, password)
        except pymysql.err.MySQLError as exc:
            raise BootstrapError(f"user {name!r}: test login failed: {exc.args}") from None

    def _align(
        self,
        u: UserSpec,
        account: tuple[str, str],
        password: str | None,
        password_works: bool,
        schema_privs: dict[str, dict[str, set[str]]],
        global_privs: dict[str, set[str]],
    ) -> list[str]:
        plugin, ssl_type = account
        changes: list[str] = []
        if u.auth == "iam":
            if plugin != IAM_PLUGIN:
                self.sql(set_iam_sql(u.name), u.name)
                changes.append("auth iam")
        else:
            assert password is not None
            if plugin == IAM_PLUGIN:
                self.sql(set_password_sql(u.name, password), u.name)
                changes.append("auth password")
            elif not password_works:
                self.sql(set_password_sql(u.name, password), u.name)
                changes.append("password")
        if ssl_type.upper() != "ANY":
            self.sql(require_ssl_sql(u.name), u.name)
            changes.append("require ssl")
        want_pattern = grant_pattern(u.database)
        have = schema_privs.get(u.name, {})
        missing = tuple(p for p in u.privileges if p not in have.get(want_pattern, set()))
        if missing:
            self.sql(grant_sql(u.name, missing, u.database), u.name)
            changes.append(f"grant {', '.join(missing)} on {u.database}")
        for pattern in sorted(have):
            extra = sorted(have[pattern] - (set(u.privileges) if pattern == want_pattern else set()))
            if extra:
                self.sql(revoke_sql(u.name, extra, pattern), u.name)
                changes.append(f"revoke {', '.join(extra)} on {pattern.replace(chr(92), '')}")
        extra_global = sorted(global_privs.get(u.name, set()))
        if extra_global:
            self.sql(revoke_sql(u.name, extra_global, None), u.name)
            changes.append(f"revoke {', '.join(extra_global)} on *.*")
        return changes

    def drop(self, names: list[str]) -> None:
        # Forgotten after the drops: a run that dies in between leaves records of missing users,
        # which the next run recreates or drops (IF EXISTS), never a user it no longer knows.
        for name in names:
            self.sql(drop_user_sql(name), name)
            self.dropped.append(name)
        self.forget(names)


def _parallel(fn: Any, items: list[Any]) -> list[Any]:
    """``fn`` over ``items`` on a few threads (secret reads and test logins are round trips).

    In order; the first failure (in item order) is raised after all have finished.
    """
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(PARALLELISM, len(items))) as pool:
        futures = [pool.submit(fn, i) for i in items]
        return [f.result() for f in futures]


def secret_forms(password: str) -> list[str]:
    """The password as it may appear in text: raw, escaped into SQL (a server error may quote the
    statement), and escaped into JSON (the log line)."""
    return [password, pymysql.converters.escape_string(password), json.dumps(password)[1:-1]]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point: converge (create/update) or release (delete); raises on any failure."""
    started = time.perf_counter()
    secrets: list[str] = []
    record: dict[str, Any] = {
        "event": "rds_users_bootstrap",
        "request_id": getattr(context, "aws_request_id", None),
    }
    try:
        request = parse_event(event)
        record["action"] = request.action
        env = Env()
        master = read_secret(request.master_secret_arn, "master secret", secrets)
        try:
            conn = _connect(env, master["username"], master["password"])
        except pymysql.err.MySQLError as exc:
            raise BootstrapError(
                f"cannot connect to {env.host}:{env.port} as the master user: {exc.args}"
            ) from None
        try:
            run = Run(env, conn, secrets)
            run.lock()
            run.ensure_state()
            if request.action == "delete":
                remaining = run.live() - 1
                if remaining <= 0:
                    run.drop(sorted(run.managed()))
                else:
                    # The old half of a replacement: the newer Invocation owns the users now.
                    run.left_alone = sorted(run.managed())
                live = run.count_invocation(-1)
            else:
                run.converge(request.users, master["username"])
                live = run.count_invocation(1 if request.action == "create" else 0)
        finally:
            conn.close()
        result: dict[str, Any] = {
            "action": request.action,
            "live_invocations": live,
            "created": run.created,
            "changed": run.changed,
            "dropped": run.dropped,
            "left_alone": run.left_alone,
        }
    except Exception as exc:
        message = exc.args[0] if isinstance(exc, BootstrapError) else f"{type(exc).__name__}: {exc}"
        message = _redact(str(message), secrets)
        record.update(ok=False, error=message, duration_ms=round((time.perf_counter() - started) * 1000, 1))
        _log(record)
        # from None: the Lambda error report must not carry a chained message we did not redact.
        raise BootstrapError(message) from None
    record.update(ok=True, duration_ms=round((time.perf_counter() - started) * 1000, 1), **result)
    _log(json.loads(_redact(json.dumps(record, default=str), secrets)))
    return result
