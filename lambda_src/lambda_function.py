"""Probe Lambda for Amazon RDS Proxy (MySQL): one ``SELECT`` through the proxy, as a chosen user.

Contract (kept stable: the stack's ``handler`` is ``lambda_function.lambda_handler``)
------------------------------------------------------------------------------------
Environment:
    PROXY_ENDPOINT         proxy host name (required): the writer (default) endpoint
    PROXY_READER_ENDPOINT  host name of the proxy's READ_ONLY endpoint (only set when it exists)
    DB_PORT                default 3306 (RDS Proxy listens on 3306 on every endpoint)
    DB_USER                the probe's own database user (required; never the master user)
    DB_NAME                database/schema (optional)
    DB_AUTH                how DB_USER logs in: ``iam`` (default, as deployed) or ``password``
    DB_PASSWORD            only read when DB_AUTH=password (local runs and tests)
    DB_USERS               optional JSON, no secrets: ``{"<name>": {"auth": "iam"|"password",
                           "secret_arn": "arn:..."|null}}``; the users an event may probe as. A
                           password user's password is read from Secrets Manager by ARN at run
                           time (secret JSON with "password"). An entry for DB_USER itself wins
                           over DB_AUTH/DB_PASSWORD.
    DB_CA_BUNDLE           optional PEM file; default is the system trust store (holds the Amazon
                           roots the proxy's certificate chains to)
    AWS_REGION             set by Lambda; region of the IAM token and the Secrets Manager client
    Optional tuning: PROBE_CONNECT_TIMEOUT_S (5), PROBE_QUERY_TIMEOUT_S (5),
    PROBE_MAX_ATTEMPTS (5), PROBE_BACKOFF_BASE_S (0.1), PROBE_BACKOFF_CAP_S (2),
    PROBE_BUDGET_S (10; only used when there is no Lambda context), PROBE_SECRET_TTL_S (300).

Event (all keys optional; combine freely):
    ``{"fresh": true}``        close the kept connection and open a new one
    ``{"user": "<name>"}``     probe as that DB_USERS entry instead of DB_USER (same fixed query)
    ``{"endpoint": "reader"}`` connect to PROXY_READER_ENDPOINT instead (``"writer"`` = default)
    ``{}``                     reuse the connection kept from earlier (warm) invocations

Response:
    200 ``{"message", "result": {"connection_test": 1, "connection_id", "user", "endpoint",
    "read_only", "server_id"}, "reused", "timings_ms": {"connect", "query"}}``; on failure
    503 (retrying later may help) or 500, body ``{"error": {"code", "type", "message",
    "retryable"}}``. ``user`` is ``CURRENT_USER()``; ``read_only`` is ``@@innodb_read_only`` on
    Aurora, ``@@read_only`` elsewhere; ``server_id`` is ``@@aurora_server_id`` on Aurora (the
    instance identifier, a string), ``@@server_id`` elsewhere (an integer).
    The handler never raises and never returns or logs a password, an IAM token or a key.

Behaviour:
    * TLS always, certificate chain and host name verified, with one ``ssl.SSLContext`` per
      container (pymysql would otherwise build and load a new one on each connect). For the
      reader endpoint a name that the certificate does not cover is still accepted when it is
      under the proxy's own domain and the certificate is the proxy's wildcard for that domain
      (see :func:`check_endpoint_name`): RDS Proxy documented that full host-name verification
      does not work on the endpoints you create.
    * IAM: a new token (``generate_db_auth_token`` for that host and user, signed locally, valid
      15 min) for each new connection; boto3 is imported lazily. RDS Proxy asks the client to
      switch to ``mysql_clear_password`` for IAM auth; pymysql answers that switch by itself,
      and the token only ever travels inside the verified TLS session.
    * Password users: the secret is read by ARN with the default Secrets Manager client
      (``AWS_ENDPOINT_URL_SECRETS_MANAGER`` honoured), cached per container for
      PROBE_SECRET_TTL_S and re-read once when the server refuses a cached password (rotation).
    * One kept connection per (endpoint, user): switching users or endpoints never reuses
      another identity's session. A kept connection that went stale (2006/2013, closed socket)
      is replaced within the same invocation. Transient errors are retried with exponential
      backoff and jitter inside a budget derived from ``context.get_remaining_time_in_millis()``;
      permanent ones (1045, TLS failures, 3159, ...) fail at once.
    * One SELECT per warm invocation. Aurora is recognised on a connection's first query (the
      Aurora form fails with 1193 elsewhere) and remembered per host, so only the container's
      first connection to a non-Aurora host pays one extra round trip.
    * One JSON log line per invocation on stdout (CloudWatch Logs Insights discovers its
      fields).

Tests: call :func:`reset_state` to drop the kept connections, SSL contexts, AWS clients, the
secret cache and the configuration read from the environment (as in a new container).
"""

from __future__ import annotations

import json
import os
import random
import re
import ssl
import sys
import time

import pymysql

# typing and dataclasses are not imported at run time: together they cost ~15 ms of cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# --------------------------------------------------------------------------- error taxonomy

#: Codes worth retrying (after backoff): server/proxy is busy, restarting or the link broke.
RETRYABLE_CODES: dict[int, str] = {
    1040: "too_many_connections",  # server max_connections / proxy client limit
    1203: "too_many_user_connections",  # max_user_connections
    9501: "borrow_timeout",  # RDS Proxy: timed out waiting to borrow a DB connection
    2003: "connect_failed",  # can't connect (refused, unreachable, timeout) - not TLS
    2006: "server_gone",
    2013: "connection_lost",
    1205: "lock_wait_timeout",
}
#: Codes that say a kept connection is stale: replace it at once, no backoff.
STALE_CODES = frozenset({0, 2006, 2013})
#: Names for well-known permanent errors (anything not in RETRYABLE_CODES is permanent).
PERMANENT_NAMES: dict[int, str] = {
    1045: "access_denied",
    1044: "db_access_denied",
    1049: "unknown_database",
    3159: "secure_transport_required",
    4036: "secure_transport_required",  # MariaDB's number for the same thing
    4151: "account_locked",
}
#: "Unknown system variable": the Aurora form of the query on a server that is not Aurora.
UNKNOWN_VARIABLE = 1193

_COLUMNS = "1 AS connection_test, CONNECTION_ID() AS connection_id, CURRENT_USER() AS user"
#: The probe query on RDS for MySQL, MariaDB and Multi-AZ DB clusters.
QUERY = f"SELECT {_COLUMNS}, @@global.read_only AS read_only, @@global.server_id AS server_id"
#: On Aurora MySQL: readers report innodb_read_only; aurora_server_id names the instance.
AURORA_QUERY = f"SELECT {_COLUMNS}, @@global.innodb_read_only AS read_only, @@aurora_server_id AS server_id"
ENDPOINTS = ("writer", "reader")
USER_AUTHS = ("iam", "password")
#: Kept connections per container; more distinct (endpoint, user) pairs evict the oldest.
MAX_KEPT_CONNECTIONS = 8
#: The proxy's own domain: the default endpoint is <name>.proxy-<id>.<region>.rds.amazonaws.com.
PROXY_DOMAIN = re.compile(r"proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com(\.cn)?")

# --------------------------------------------------------------------------- container state

_conns: dict[tuple[Any, ...], pymysql.connections.Connection] = {}
_conn: pymysql.connections.Connection | None = None  # the one the last invocation used
_ssl_ctxs: dict[tuple[str, str], ssl.SSLContext] = {}
_rds_client: Any = None
_rds_client_region: str | None = None
_sm_client: Any = None
_sm_client_region: str | None = None
_secret_cache: dict[str, tuple[float, str]] = {}  # secret ARN -> (read at, password)
_query_for_host: dict[str, str] = {}  # host -> QUERY or AURORA_QUERY, once known
_config: Config | None = None  # Lambda's environment is fixed for the container's life


def reset_state() -> None:
    """Test hook: forget everything kept between invocations (as in a new container)."""
    global _conn, _rds_client, _rds_client_region, _sm_client, _sm_client_region, _config
    for key in list(_conns):
        _drop_connection(key, graceful=True)
    _conn = None
    _config = None
    _ssl_ctxs.clear()
    _rds_client = None
    _rds_client_region = None
    _sm_client = None
    _sm_client_region = None
    _secret_cache.clear()
    _query_for_host.clear()


def _drop_connection(key: tuple[Any, ...], graceful: bool) -> None:
    global _conn
    conn = _conns.pop(key, None)
    if conn is None:
        return
    if conn is _conn:
        _conn = None
    try:
        if graceful and conn.open:
            conn.close()  # COM_QUIT: lets the proxy release the client connection now
        else:
            conn._force_close()
    except Exception:
        pass


def _keep_connection(key: tuple[Any, ...], conn: pymysql.connections.Connection) -> None:
    while len(_conns) >= MAX_KEPT_CONNECTIONS:
        _drop_connection(next(iter(_conns)), graceful=True)  # dicts keep insertion order
    _conns[key] = conn


# --------------------------------------------------------------------------- configuration


class ConfigError(Exception):
    pass


class TokenError(Exception):
    pass


class SecretError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Config:
    """Settings for one container, read from the environment."""

    host: str
    reader_host: str | None
    port: int
    user: str
    database: str | None
    auth: str
    password: str | None
    users: dict[str, tuple[str, str | None]]  # DB_USERS: name -> (auth, secret ARN)
    ca_bundle: str | None
    region: str | None
    connect_timeout: float
    query_timeout: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    default_budget: float
    secret_ttl: float

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)


class Target:
    """Where one invocation connects and as whom (from the event and the configuration)."""

    def __init__(
        self, endpoint: str, host: str, user: str, auth: str, password: str | None, secret_arn: str | None
    ) -> None:
        self.endpoint = endpoint
        self.host = host
        self.user = user
        self.auth = auth
        self.password = password
        self.secret_arn = secret_arn


def current_config() -> Config:
    """The container's configuration, read from the environment on first use.

    Lambda never changes a running container's environment, so reading it once saves ~15 us
    per warm invocation. (Tests that change the environment call reset_state().)
    A configuration error is not cached: the next invocation reads the environment again.
    """
    global _config
    if _config is None:
        _config = load_config()
    return _config


def _float_env(env: Any, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be > 0, got {raw!r}")
    return value


def parse_db_users(raw: str | None) -> dict[str, tuple[str, str | None]]:
    """DB_USERS (JSON) -> {name: (auth, secret ARN or None)}; every problem names the entry."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"DB_USERS must be a JSON object, got invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"DB_USERS must be a JSON object of users, got {type(data).__name__}")
    users: dict[str, tuple[str, str | None]] = {}
    for name, entry in data.items():
        if not name or not isinstance(entry, dict):
            raise ConfigError(
                f'DB_USERS[{name!r}] must be an object {{"auth": "iam"|"password", "secret_arn": ...}}'
            )
        auth = entry.get("auth")
        if auth not in USER_AUTHS:
            raise ConfigError(f"DB_USERS[{name!r}].auth is {auth!r}; allowed: 'iam', 'password'")
        arn = entry.get("secret_arn")
        if auth == "password":
            if not isinstance(arn, str) or not arn.startswith("arn:") or ":secretsmanager:" not in arn:
                raise ConfigError(
                    f"DB_USERS[{name!r}].secret_arn is {arn!r}; a password user needs the ARN of "
                    "its Secrets Manager secret (arn:<partition>:secretsmanager:...)"
                )
        elif arn is not None:
            raise ConfigError(f"DB_USERS[{name!r}].secret_arn must be null for an IAM user, got {arn!r}")
        users[name] = (auth, arn)
    return users


def load_config(env: Any = None) -> Config:
    env = os.environ if env is None else env
    host = env.get("PROXY_ENDPOINT", "").strip()
    if not host:
        raise ConfigError("PROXY_ENDPOINT is not set")
    user = env.get("DB_USER", "").strip()
    if not user:
        raise ConfigError("DB_USER is not set")
    port_raw = env.get("DB_PORT", "") or "3306"
    try:
        port = int(port_raw)
    except ValueError as exc:
        raise ConfigError(f"DB_PORT must be an integer, got {port_raw!r}") from exc
    if not 0 < port < 65536:
        raise ConfigError(f"DB_PORT out of range: {port}")
    auth = (env.get("DB_AUTH", "") or "iam").strip().lower()
    if auth not in USER_AUTHS:
        raise ConfigError(f"DB_AUTH must be 'iam' or 'password', got {auth!r}")
    users = parse_db_users(env.get("DB_USERS"))
    password = None
    if auth == "password" and user not in users:
        password = env.get("DB_PASSWORD")
        if password is None:
            raise ConfigError("DB_AUTH=password but DB_PASSWORD is not set")
    ca_bundle = env.get("DB_CA_BUNDLE") or None
    return Config(
        host=host,
        reader_host=(env.get("PROXY_READER_ENDPOINT") or "").strip() or None,
        port=port,
        user=user,
        database=env.get("DB_NAME") or None,
        auth=auth,
        password=password,
        users=users,
        ca_bundle=ca_bundle,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        connect_timeout=_float_env(env, "PROBE_CONNECT_TIMEOUT_S", 5.0),
        query_timeout=_float_env(env, "PROBE_QUERY_TIMEOUT_S", 5.0),
        max_attempts=max(1, int(_float_env(env, "PROBE_MAX_ATTEMPTS", 5))),
        backoff_base=_float_env(env, "PROBE_BACKOFF_BASE_S", 0.1),
        backoff_cap=_float_env(env, "PROBE_BACKOFF_CAP_S", 2.0),
        default_budget=_float_env(env, "PROBE_BUDGET_S", 10.0),
        secret_ttl=_float_env(env, "PROBE_SECRET_TTL_S", 300.0),
    )


def resolve_target(cfg: Config, event: Any) -> Target:
    """The endpoint and identity the event asks for; a ConfigError names what is wrong."""
    endpoint = "writer"
    user = None
    if isinstance(event, dict):
        endpoint = event.get("endpoint") or "writer"
        user = event.get("user")
    if endpoint not in ENDPOINTS:
        raise ConfigError(f"event 'endpoint' is {endpoint!r}; allowed: 'writer' (default), 'reader'")
    if endpoint == "reader":
        if cfg.reader_host is None:
            raise ConfigError(
                "event asks for the reader endpoint but PROXY_READER_ENDPOINT is not set "
                "(the stack sets it only when the proxy has a READ_ONLY endpoint)"
            )
        host = cfg.reader_host
    else:
        host = cfg.host
    if user is None:
        user = cfg.user
    elif not isinstance(user, str) or not user:
        raise ConfigError(f"event 'user' must be a non-empty user name, got {user!r}")
    if user in cfg.users:
        auth, arn = cfg.users[user]
        return Target(endpoint, host, user, auth, None, arn)
    if user == cfg.user:
        return Target(endpoint, host, user, cfg.auth, cfg.password, None)
    known = ", ".join(sorted({cfg.user, *cfg.users}))
    raise ConfigError(f"unknown user {user!r} in event 'user'; this probe knows: {known} (DB_USER, DB_USERS)")


# --------------------------------------------------------------------------- TLS and auth


def _name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or a wildcard that stands for the whole left-most label only."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return False


def check_endpoint_name(cert: dict[str, Any] | None, host: str, proxy_host: str) -> None:
    """Accept the reader endpoint's certificate, or raise ssl.SSLCertVerificationError.

    The chain has already been verified. The name is accepted when the certificate covers it
    (as any TLS client checks), or when the host is under the proxy's own domain
    (``…proxy-<id>.<region>.rds.amazonaws.com``, taken from PROXY_ENDPOINT) and the certificate
    is the wildcard for exactly that domain. AWS documented that VERIFY_IDENTITY works on the
    default proxy endpoint but not on the endpoints you create, which are named
    ``<endpoint>.endpoint.proxy-<id>.<region>.rds.amazonaws.com``: two labels under the wildcard.
    """
    sans = (cert or {}).get("subjectAltName", ())
    names = [value for kind, value in sans if kind == "DNS"]
    ips = [value for kind, value in sans if kind == "IP Address"]
    if any(_name_matches(n, host) for n in names) or host in ips:
        return
    domain = proxy_host.lower().rstrip(".").partition(".")[2]
    under = host.lower().rstrip(".").endswith("." + domain)
    if PROXY_DOMAIN.fullmatch(domain) and under and f"*.{domain}" in (n.lower() for n in names):
        return
    raise ssl.SSLCertVerificationError(
        f"certificate verify failed: host name mismatch: {host!r} is not in the certificate "
        f"({', '.join(names + ips) or 'no names'}) nor under the proxy's domain {domain!r}"
    )


class ReaderSSLContext(ssl.SSLContext):
    """Chain verified by OpenSSL; the name by :func:`check_endpoint_name`, before any credential is sent."""

    proxy_host = ""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        tls = super().wrap_socket(sock, *args, **kwargs)  # handshake happens here
        try:
            check_endpoint_name(tls.getpeercert(), kwargs.get("server_hostname") or "", self.proxy_host)
        except BaseException:
            tls.close()
            raise
        return tls


def ssl_context(ca_bundle: str | None, reader_of: str | None = None) -> ssl.SSLContext:
    """The container's verifying SSL context (one per DB_CA_BUNDLE; the reader endpoint has its own).

    ``reader_of``: the proxy's default endpoint, whose domain the reader endpoint's name may sit under.
    """
    key = (ca_bundle or "", reader_of or "")
    ctx = _ssl_ctxs.get(key)
    if ctx is None:
        try:
            if reader_of is None:
                ctx = ssl.create_default_context(cafile=ca_bundle)
                ctx.check_hostname = True
            else:
                reader = ReaderSSLContext(ssl.PROTOCOL_TLS_CLIENT)
                reader.check_hostname = False  # checked by check_endpoint_name instead
                reader.proxy_host = reader_of
                if ca_bundle:
                    reader.load_verify_locations(cafile=ca_bundle)
                else:
                    reader.load_default_certs()
                ctx = reader
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load DB_CA_BUNDLE {ca_bundle!r}: {exc}") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _ssl_ctxs[key] = ctx
    return ctx


def iam_token(cfg: Config, host: str | None = None, user: str | None = None) -> str:
    """A new IAM auth token for this connection (local SigV4 presign; no AWS call)."""
    global _rds_client, _rds_client_region
    try:
        if _rds_client is None or _rds_client_region != cfg.region:
            import boto3  # lazy: keeps boto3 out of the cold start in password mode

            # Own session (not boto3's default one) so reset_state() really starts over.
            _rds_client = boto3.session.Session().client("rds", region_name=cfg.region)
            _rds_client_region = cfg.region
        token = _rds_client.generate_db_auth_token(
            DBHostname=host or cfg.host, Port=cfg.port, DBUsername=user or cfg.user, Region=cfg.region
        )
    except Exception as exc:
        raise TokenError(f"cannot generate IAM auth token: {type(exc).__name__}: {exc}") from exc
    return str(token)


#: Secrets Manager error codes worth retrying later; anything else (AccessDenied,
#: ResourceNotFound, a deleted secret, KMS refusing) will not get better by itself.
_RETRYABLE_SECRET_ERRORS = frozenset(
    {"ThrottlingException", "InternalServiceError", "InternalFailure", "ServiceUnavailable", "RequestTimeout"}
)


def secret_password(cfg: Config, arn: str, timeout: float, refresh: bool = False) -> tuple[str, bool]:
    """(password from the secret, whether it came from the cache); SecretError otherwise."""
    global _sm_client, _sm_client_region
    now = time.monotonic()
    cached = _secret_cache.get(arn)
    if cached is not None and not refresh and now - cached[0] < cfg.secret_ttl:
        return cached[1], True
    try:
        if _sm_client is None or _sm_client_region != cfg.region:
            import boto3
            from botocore.config import Config as BotoConfig

            # The default client: AWS_ENDPOINT_URL_SECRETS_MANAGER (tests, a VPC endpoint) applies.
            _sm_client = boto3.session.Session().client(
                "secretsmanager",
                region_name=cfg.region,
                config=BotoConfig(
                    connect_timeout=max(0.1, min(3.0, timeout)),
                    read_timeout=max(0.1, min(3.0, timeout)),
                    retries={"mode": "standard", "max_attempts": 2},
                ),
            )
            _sm_client_region = cfg.region
        resp = _sm_client.get_secret_value(SecretId=arn)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        transient = code in _RETRYABLE_SECRET_ERRORS or "Endpoint" in code or "Timeout" in code
        # botocore's message names the operation and the ARN, never the value.
        raise SecretError(f"cannot read secret {arn}: {code}: {exc}", transient) from exc
    try:
        password = json.loads(resp["SecretString"])["password"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SecretError(f"secret {arn} holds no JSON with a string 'password'", False) from exc
    if not isinstance(password, str) or not password:
        raise SecretError(f"secret {arn} holds no JSON with a string 'password'", False)
    _secret_cache[arn] = (now, password)
    return password, False


# --------------------------------------------------------------------------- classification


class Failure:
    """What went wrong, as reported in the response body and the log line."""

    def __init__(self, code: int | None, type: str, message: str, retryable: bool) -> None:
        self.code = code
        self.type = type
        self.message = message
        self.retryable = retryable


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        orig = getattr(cur, "original_exception", None)
        for cand in (cur, orig):
            if isinstance(cand, ssl.SSLError):
                return cand
        cur = orig if isinstance(orig, BaseException) else cur.__cause__
        seen += 1
    return None


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, ConfigError):
        return Failure(None, "config", str(exc), False)
    if isinstance(exc, TokenError):
        return Failure(None, "iam_token", str(exc), False)
    if isinstance(exc, SecretError):
        return Failure(None, "secret", str(exc), exc.retryable)
    if isinstance(exc, pymysql.err.MySQLError):
        args = exc.args
        code = args[0] if args and isinstance(args[0], int) else None
        message = str(args[1]) if len(args) > 1 else str(exc)
        tls = _tls_failure(exc)
        if tls is not None:
            # A reset mid-handshake is a network problem; anything else (verification,
            # protocol/cipher mismatch) will not get better by retrying.
            transient = isinstance(tls, (ssl.SSLEOFError, ssl.SSLZeroReturnError))
            kind = "tls_verification" if isinstance(tls, ssl.SSLCertVerificationError) else "tls"
            return Failure(code, kind, message, transient)
        if isinstance(exc, pymysql.err.InterfaceError) and code == 0:
            return Failure(2006, "server_gone", "connection already closed", True)
        if code in RETRYABLE_CODES:
            return Failure(code, RETRYABLE_CODES[code], message, True)
        name = PERMANENT_NAMES.get(code or -1, "database_error")
        return Failure(code, name, message, False)
    return Failure(None, "internal", f"{type(exc).__name__}: {exc}", False)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------- the probe


def _credential(cfg: Config, target: Target, timeout: float, refresh: bool) -> tuple[str, bool]:
    """(what to send as the password, whether it is a cached secret)."""
    if target.auth == "iam":
        return iam_token(cfg, target.host, target.user), False
    if target.secret_arn is not None:
        return secret_password(cfg, target.secret_arn, timeout, refresh)
    return target.password or "", False


def _connect(cfg: Config, target: Target, password: str, timeout: float) -> pymysql.connections.Connection:
    reader_of = cfg.host if target.endpoint == "reader" else None
    return pymysql.connect(
        host=target.host,
        port=cfg.port,
        user=target.user,
        password=password,
        database=cfg.database,
        ssl=ssl_context(cfg.ca_bundle, reader_of),  # an SSLContext: TLS required, verified
        connect_timeout=min(cfg.connect_timeout, timeout),
        read_timeout=min(cfg.query_timeout, timeout),
        write_timeout=min(cfg.query_timeout, timeout),
        # autocommit: no open transaction, so the proxy can hand the backend connection
        # back to its pool right after each statement (no pinning by transaction).
        autocommit=True,
        charset="utf8mb4",
    )


def _clamp_timeouts(conn: pymysql.connections.Connection, cfg: Config, left: float) -> None:
    """Keep a kept connection's socket timeouts inside this invocation's budget."""
    timeout = min(cfg.query_timeout, max(left, 0.05))
    if getattr(conn, "_read_timeout", timeout) != timeout:
        conn._read_timeout = timeout
        conn._write_timeout = timeout


def _run_query(conn: pymysql.connections.Connection) -> tuple[Any, ...]:
    """(connection_test, connection_id, user, read_only, server_id) in one SELECT once the flavour is known."""
    host = conn.host
    query = _query_for_host.get(host)
    with conn.cursor() as cur:
        if query is None:
            try:
                cur.execute(AURORA_QUERY)
                query = AURORA_QUERY
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != UNKNOWN_VARIABLE:
                    raise
                cur.execute(QUERY)
                query = QUERY
            _query_for_host[host] = query
        else:
            cur.execute(query)
        row = cur.fetchone()
    if row is None:
        raise pymysql.err.OperationalError(2013, "probe query returned no row")
    return row


def _result(row: tuple[Any, ...], endpoint: str) -> dict[str, Any]:
    test, cid, user, read_only, server_id = row
    if isinstance(server_id, bytes | bytearray):
        server_id = server_id.decode()
    return {
        "connection_test": int(test),
        "connection_id": int(cid),
        "user": user.decode() if isinstance(user, bytes | bytearray) else str(user),
        "endpoint": endpoint,
        "read_only": bool(int(read_only)),
        "server_id": int(server_id) if isinstance(server_id, int) else str(server_id),
    }


def _budget_seconds(context: Any, cfg: Config) -> float:
    remaining_ms = None
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if callable(getter):
        try:
            remaining_ms = float(getter())
        except Exception:
            remaining_ms = None
    if remaining_ms is None:
        return cfg.default_budget
    # Spend at most three quarters of what is left (and keep >= 0.1 s) so the invocation
    # ends well inside the function timeout, with time to respond and log.
    remaining = remaining_ms / 1000.0
    return max(0.0, min(remaining * 0.75, remaining - 0.1))


def _backoff(cfg: Config, retry: int) -> float:
    """Exponential backoff with equal jitter: half fixed, half random."""
    ceiling = min(cfg.backoff_cap, cfg.backoff_base * (2 ** (retry - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps(body)}


def _log(record: dict[str, Any]) -> None:
    try:
        try:
            line = json.dumps(record)  # the shared default encoder: the fast path
        except (TypeError, ValueError):
            line = json.dumps(record, default=str)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except Exception:
        pass


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Entry point. Never raises."""
    global _conn
    started = time.perf_counter()
    fresh = isinstance(event, dict) and event.get("fresh") in (True, 1, "true", "True", "1")
    record: dict[str, Any] = {
        "event": "rds_proxy_probe",
        "request_id": getattr(context, "aws_request_id", None),
        "fresh": fresh,
    }
    secrets: list[str] = []
    attempts = 0
    stale_replaced = False
    secret_refreshed = False
    connect_ms = 0.0
    query_ms = 0.0
    reused = False
    failure: Failure | None = None
    result: dict[str, Any] | None = None

    try:
        cfg = current_config()
        if cfg.password:
            secrets.append(cfg.password)
        target = resolve_target(cfg, event)
        record.update(auth=target.auth, endpoint=target.endpoint, db_user=target.user)
        deadline = started + _budget_seconds(context, cfg)
        key = (target.endpoint, target.user, target.host, cfg.port, cfg.database, target.auth, cfg.ca_bundle)
        if fresh:
            _drop_connection(key, graceful=True)
        retry = 0
        while True:
            attempts += 1
            left = deadline - time.perf_counter()
            conn = _conns.get(key)
            reused = conn is not None
            cached_secret = False
            try:
                if conn is None:
                    if left <= 0:
                        raise pymysql.err.OperationalError(
                            2003, "no time left in the invocation budget to connect"
                        )
                    t0 = time.perf_counter()
                    try:
                        password, cached_secret = _credential(cfg, target, left, secret_refreshed)
                        secrets.append(password)
                        conn = _connect(cfg, target, password, left)
                    finally:
                        connect_ms += (time.perf_counter() - t0) * 1000.0
                    _keep_connection(key, conn)
                else:
                    _clamp_timeouts(conn, cfg, left)
                _conn = conn
                t0 = time.perf_counter()
                try:
                    row = _run_query(conn)
                finally:
                    query_ms += (time.perf_counter() - t0) * 1000.0
                result = _result(row, target.endpoint)
                break
            except Exception as exc:
                failure = classify(exc)
                _drop_connection(key, graceful=False)
                if reused and failure.code in STALE_CODES and not stale_replaced:
                    # The kept connection died while idle (server restart, idle timeout,
                    # proxy recycling): replace it now, without backoff.
                    stale_replaced = True
                    failure = None
                    continue
                if cached_secret and failure.code == 1045 and not secret_refreshed:
                    # The password may have been rotated since it was cached: read it again once.
                    secret_refreshed = True
                    failure = None
                    continue
                if not failure.retryable or attempts >= cfg.max_attempts:
                    break
                retry += 1
                pause = _backoff(cfg, retry)
                # Only sleep if a useful attempt still fits in the budget afterwards.
                if time.perf_counter() + pause + 0.05 >= deadline:
                    break
                time.sleep(pause)
                failure = None
    except Exception as exc:
        failure = classify(exc)

    record.update(
        attempts=attempts,
        stale_replaced=stale_replaced,
        secret_refreshed=secret_refreshed,
        timings_ms={
            "connect": round(connect_ms, 3),
            "query": round(query_ms, 3),
            "total": round((time.perf_counter() - started) * 1000.0, 3),
        },
    )
    if result is not None:
        record.update(
            ok=True,
            status_code=200,
            connection_id=result["connection_id"],
            user=result["user"],
            server_id=result["server_id"],
            read_only=result["read_only"],
            reused=reused,
            error_code=None,
        )
        _log(record)
        return _json_response(
            200,
            {
                "message": "Connected through RDS Proxy: SELECT 1 succeeded",
                "result": result,
                "reused": reused,
                "timings_ms": {"connect": round(connect_ms, 3), "query": round(query_ms, 3)},
            },
        )

    if failure is None:  # pragma: no cover - defensive
        failure = Failure(None, "internal", "probe ended without result", False)
    failure.message = _redact(failure.message, secrets)
    status = 503 if failure.retryable else 500
    record.update(
        ok=False,
        status_code=status,
        connection_id=None,
        reused=False,
        error_code=failure.code,
        error_type=failure.type,
        error_message=failure.message,
        retryable=failure.retryable,
    )
    _log(record)
    return _json_response(
        status,
        {
            "error": {
                "code": failure.code,
                "type": failure.type,
                "message": failure.message,
                "retryable": failure.retryable,
            }
        },
    )
