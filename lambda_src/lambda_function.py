"""Probe Lambda for Amazon RDS Proxy (MySQL): ``SELECT 1, CONNECTION_ID()`` through the proxy.

Contract (kept stable: the stack's ``handler`` is ``lambda_function.lambda_handler``)
------------------------------------------------------------------------------------
Environment:
    PROXY_ENDPOINT  proxy host name (required)
    DB_PORT         default 3306
    DB_USER         database user (required)
    DB_NAME         database/schema (optional)
    DB_AUTH         ``iam`` (default, as deployed) or ``password`` (local runs and tests)
    DB_PASSWORD     only read when DB_AUTH=password
    DB_CA_BUNDLE    optional PEM file; default is the system trust store (holds the Amazon
                    roots the proxy's certificate chains to)
    AWS_REGION      set by Lambda; region the IAM token is signed for
    Optional tuning: PROBE_CONNECT_TIMEOUT_S (5), PROBE_QUERY_TIMEOUT_S (5),
    PROBE_MAX_ATTEMPTS (5), PROBE_BACKOFF_BASE_S (0.1), PROBE_BACKOFF_CAP_S (2),
    PROBE_BUDGET_S (10; only used when there is no Lambda context).

Event:
    ``{}``               reuse the connection kept from earlier (warm) invocations
    ``{"fresh": true}``  close the kept connection and open a new one

Response:
    200 ``{"message", "result": {"connection_test": 1, "connection_id"}, "reused",
    "timings_ms": {"connect", "query"}}``; on failure 503 (retrying later may help) or
    500, body ``{"error": {"code", "type", "message", "retryable"}}``.
    The handler never raises and never returns or logs the password, an IAM token or a key.

Behaviour:
    * TLS always, certificate and host name verified, with one ``ssl.SSLContext`` per
      container (pymysql would otherwise build and load a new one on each connect).
    * IAM: a new token (``generate_db_auth_token``, signed locally, valid 15 min) for each
      new connection; boto3 is imported lazily. RDS Proxy asks the client to switch to
      ``mysql_clear_password`` for IAM auth; pymysql answers that switch by itself, and
      the token only ever travels inside the verified TLS session.
    * A kept connection that went stale (2006/2013, closed socket) is replaced within the
      same invocation. Transient errors are retried with exponential backoff and jitter
      inside a budget derived from ``context.get_remaining_time_in_millis()``; permanent
      ones (1045, TLS failures, 3159, ...) fail at once.
    * One JSON log line per invocation on stdout (CloudWatch Logs Insights discovers its
      fields).

Tests: call :func:`reset_state` to drop the kept connection, SSL context, RDS client and the
configuration read from the environment (as in a new container).
"""

from __future__ import annotations

import json
import os
import random
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

QUERY = "SELECT 1 AS connection_test, CONNECTION_ID() AS connection_id"

# --------------------------------------------------------------------------- container state

_conn: pymysql.connections.Connection | None = None
_conn_key: tuple[Any, ...] | None = None
_ssl_ctx: ssl.SSLContext | None = None
_ssl_ctx_key: str | None = None
_rds_client: Any = None
_rds_client_region: str | None = None
_config: Config | None = None  # Lambda's environment is fixed for the container's life


def reset_state() -> None:
    """Test hook: forget everything kept between invocations (as in a new container)."""
    global _conn, _conn_key, _ssl_ctx, _ssl_ctx_key, _rds_client, _rds_client_region, _config
    _drop_connection(graceful=True)
    _config = None
    _conn_key = None
    _ssl_ctx = None
    _ssl_ctx_key = None
    _rds_client = None
    _rds_client_region = None


def _drop_connection(graceful: bool) -> None:
    global _conn
    conn, _conn = _conn, None
    if conn is None:
        return
    try:
        if graceful and conn.open:
            conn.close()  # COM_QUIT: lets the proxy release the client connection now
        else:
            conn._force_close()
    except Exception:
        pass


# --------------------------------------------------------------------------- configuration


class ConfigError(Exception):
    pass


class TokenError(Exception):
    pass


class Config:
    """Settings for one invocation, read from the environment."""

    host: str
    port: int
    user: str
    database: str | None
    auth: str
    password: str | None
    ca_bundle: str | None
    region: str | None
    connect_timeout: float
    query_timeout: float
    max_attempts: int
    backoff_base: float
    backoff_cap: float
    default_budget: float

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)


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
    if auth not in ("iam", "password"):
        raise ConfigError(f"DB_AUTH must be 'iam' or 'password', got {auth!r}")
    password = None
    if auth == "password":
        password = env.get("DB_PASSWORD")
        if password is None:
            raise ConfigError("DB_AUTH=password but DB_PASSWORD is not set")
    ca_bundle = env.get("DB_CA_BUNDLE") or None
    return Config(
        host=host,
        port=port,
        user=user,
        database=env.get("DB_NAME") or None,
        auth=auth,
        password=password,
        ca_bundle=ca_bundle,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        connect_timeout=_float_env(env, "PROBE_CONNECT_TIMEOUT_S", 5.0),
        query_timeout=_float_env(env, "PROBE_QUERY_TIMEOUT_S", 5.0),
        max_attempts=max(1, int(_float_env(env, "PROBE_MAX_ATTEMPTS", 5))),
        backoff_base=_float_env(env, "PROBE_BACKOFF_BASE_S", 0.1),
        backoff_cap=_float_env(env, "PROBE_BACKOFF_CAP_S", 2.0),
        default_budget=_float_env(env, "PROBE_BUDGET_S", 10.0),
    )


# --------------------------------------------------------------------------- TLS and auth


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The container's verifying SSL context (rebuilt only if DB_CA_BUNDLE changes)."""
    global _ssl_ctx, _ssl_ctx_key
    key = ca_bundle or ""
    if _ssl_ctx is None or _ssl_ctx_key != key:
        try:
            ctx = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load DB_CA_BUNDLE {ca_bundle!r}: {exc}") from exc
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _ssl_ctx, _ssl_ctx_key = ctx, key
    return _ssl_ctx


def iam_token(cfg: Config) -> str:
    """A new IAM auth token for this connection (local SigV4 presign; no AWS call)."""
    global _rds_client, _rds_client_region
    try:
        if _rds_client is None or _rds_client_region != cfg.region:
            import boto3  # lazy: keeps boto3 out of the cold start in password mode

            # Own session (not boto3's default one) so reset_state() really starts over.
            _rds_client = boto3.session.Session().client("rds", region_name=cfg.region)
            _rds_client_region = cfg.region
        token = _rds_client.generate_db_auth_token(
            DBHostname=cfg.host, Port=cfg.port, DBUsername=cfg.user, Region=cfg.region
        )
    except Exception as exc:
        raise TokenError(f"cannot generate IAM auth token: {type(exc).__name__}: {exc}") from exc
    return str(token)


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


def _connect(cfg: Config, timeout: float, secrets: list[str]) -> pymysql.connections.Connection:
    password = iam_token(cfg) if cfg.auth == "iam" else (cfg.password or "")
    secrets.append(password)
    return pymysql.connect(
        host=cfg.host,
        port=cfg.port,
        user=cfg.user,
        password=password,
        database=cfg.database,
        ssl=ssl_context(cfg.ca_bundle),  # an SSLContext: TLS required, verified
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


def _run_query(conn: pymysql.connections.Connection) -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute(QUERY)
        row = cur.fetchone()
    if row is None:
        raise pymysql.err.OperationalError(2013, "probe query returned no row")
    return int(row[0]), int(row[1])


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
    global _conn, _conn_key
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
    connect_ms = 0.0
    query_ms = 0.0
    reused = False
    failure: Failure | None = None
    result: tuple[int, int] | None = None

    try:
        cfg = current_config()
        record["auth"] = cfg.auth
        if cfg.password:
            secrets.append(cfg.password)
        deadline = started + _budget_seconds(context, cfg)
        key = (cfg.host, cfg.port, cfg.user, cfg.database, cfg.auth, cfg.ca_bundle)
        if fresh or _conn_key != key:
            _drop_connection(graceful=True)
        retry = 0
        while True:
            attempts += 1
            left = deadline - time.perf_counter()
            conn = _conn
            reused = conn is not None
            try:
                if conn is None:
                    if left <= 0:
                        raise pymysql.err.OperationalError(
                            2003, "no time left in the invocation budget to connect"
                        )
                    t0 = time.perf_counter()
                    try:
                        conn = _connect(cfg, left, secrets)
                    finally:
                        connect_ms += (time.perf_counter() - t0) * 1000.0
                    _conn, _conn_key = conn, key
                else:
                    _clamp_timeouts(conn, cfg, left)
                t0 = time.perf_counter()
                try:
                    result = _run_query(conn)
                finally:
                    query_ms += (time.perf_counter() - t0) * 1000.0
                break
            except Exception as exc:
                failure = classify(exc)
                _drop_connection(graceful=False)
                if reused and failure.code in STALE_CODES and not stale_replaced:
                    # The kept connection died while idle (server restart, idle timeout,
                    # proxy recycling): replace it now, without backoff.
                    stale_replaced = True
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
        timings_ms={
            "connect": round(connect_ms, 3),
            "query": round(query_ms, 3),
            "total": round((time.perf_counter() - started) * 1000.0, 3),
        },
    )
    if result is not None:
        connection_test, connection_id = result
        record.update(
            ok=True,
            status_code=200,
            connection_id=connection_id,
            reused=reused,
            error_code=None,
        )
        _log(record)
        return _json_response(
            200,
            {
                "message": "Connected through RDS Proxy: SELECT 1 succeeded",
                "result": {"connection_test": connection_test, "connection_id": connection_id},
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
