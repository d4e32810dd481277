"""Stack settings: every config key read once, checked, and frozen before any resource is declared.

The program reads config in exactly one place (`Settings.from_config`); components receive the frozen
`Settings` (or the parts they need) and never call `pulumi.Config()`. Values arrive as the strings the
Pulumi CLI passes (`"900"`, `"true"`, `'["EXCLUDE_VARIABLE_SETS"]'`), so parsing and type errors are ours
to report. All problems are collected and raised together in one `ConfigError`.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

FROM_PROFILE = -1
"""Pool keys default to -1 in Pulumi.yaml: "take this value from poolProfile"."""


class PoolProfile(enum.Enum):
    """Named pool presets; explicit pool keys override single values."""

    RECIPE = "recipe"
    EVENT_DRIVEN = "event-driven"
    STEADY = "steady"


@dataclass(frozen=True)
class PoolSettings:
    """What RDS Proxy's pool does with client and database connections."""

    idle_client_timeout: int
    max_connections_percent: int
    max_idle_connections_percent: int
    connection_borrow_timeout: int


PROFILES: Mapping[PoolProfile, PoolSettings] = {
    # The AWS recipe's tuned values.
    PoolProfile.RECIPE: PoolSettings(900, 75, 25, 120),
    # Bursty, short-lived clients (Lambda): drop idle clients early, give idle DB connections back
    # after a burst, and fail fast rather than queue when the pool is exhausted.
    PoolProfile.EVENT_DRIVEN: PoolSettings(300, 90, 10, 30),
    # Long-lived clients: the recipe's first settings, RDS Proxy's own defaults.
    PoolProfile.STEADY: PoolSettings(1800, 100, 50, 120),
}


class IamAuth(enum.Enum):
    """Whether clients of the proxy must present IAM auth tokens (RDS Proxy's `IAMAuth`)."""

    REQUIRED = "REQUIRED"
    DISABLED = "DISABLED"


SESSION_PINNING_FILTERS = ("EXCLUDE_VARIABLE_SETS",)
# RDS rejects these as master user names (RDS for MySQL user guide, "Master user name" constraints).
RESERVED_USERNAMES = frozenset({"rdsadmin", "rdsrepladmin", "root", "mysql", "mysql.sys", "mysql.session"})
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class ConfigError(pulumi.RunError):
    """Every invalid config key at once; the CLI prints a RunError without a traceback."""

    def __init__(self, project: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration ({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            f"nothing was created. Fix these keys (`pulumi config set {project}:<key> <value>` "
            f"or the stack file):\n{lines}"
        )


@dataclass(frozen=True)
class Settings:
    """Everything the stack needs to know, validated."""

    project: str
    stack: str
    pool_profile: PoolProfile
    pool: PoolSettings
    init_query: str | None
    session_pinning_filters: tuple[str, ...]
    require_tls: bool
    debug_logging: bool
    iam_auth: IamAuth
    vpc_cidr: str
    az_count: int
    db_instance_class: str
    db_engine_version: str
    db_allocated_storage: int
    db_name: str
    db_username: str
    db_backup_retention_days: int
    db_multi_az: bool
    db_deletion_protection: bool
    db_skip_final_snapshot: bool
    probe_timeout: int
    probe_memory_size: int
    db_port: int = 3306

    @property
    def iam_auth_required(self) -> bool:
        return self.iam_auth is IamAuth.REQUIRED

    @property
    def resource_prefix(self) -> str:
        """`<project>-<stack>` made into a valid RDS identifier (letter first, [a-z0-9-], no `--`)."""
        raw = re.sub(r"[^a-z0-9]+", "-", f"{self.project}-{self.stack}".lower()).strip("-")
        if not raw or not raw[0].isalpha():
            raw = f"p-{raw}".rstrip("-")
        return raw[:50].rstrip("-")

    @staticmethod
    def from_config(config: pulumi.Config, project: str, stack: str) -> Settings:
        """Read the project's config (as `pulumi up` passes it) and validate it."""
        return parse_settings(lambda key: config.get(key), project, stack)


def parse_settings(get: Callable[[str], str | None], project: str, stack: str) -> Settings:
    """Parse raw config strings; raise one ConfigError listing every bad key."""
    p = _Parser(get)
    profile_name = p.string("poolProfile", "recipe")
    profile = PoolProfile.RECIPE
    try:
        profile = PoolProfile(profile_name)
    except ValueError:
        p.fail("poolProfile", profile_name, f"one of {', '.join(m.value for m in PoolProfile)}")
    base = PROFILES[profile]

    def pool_key(key: str, preset: int, low: int, high: int | None) -> int:
        value = p.integer(key, FROM_PROFILE)
        if value == FROM_PROFILE:
            return preset
        return p.in_range(
            key, value, low, high, note=f" (or {FROM_PROFILE} for the {profile.value} profile's {preset})"
        )

    idle = pool_key("idleClientTimeout", base.idle_client_timeout, 1, 28800)
    max_pct = pool_key("maxConnectionsPercent", base.max_connections_percent, 1, 100)
    max_idle = pool_key("maxIdleConnectionsPercent", base.max_idle_connections_percent, 0, 100)
    if max_pct < max_idle <= 100 and max_pct >= 1:
        p.fail(
            "maxIdleConnectionsPercent",
            max_idle,
            f"an integer from 0 to maxConnectionsPercent ({max_pct})",
        )
    borrow = pool_key("connectionBorrowTimeout", base.connection_borrow_timeout, 0, 300)

    filters = p.string_list("sessionPinningFilters")
    for f in filters:
        if f not in SESSION_PINNING_FILTERS:
            p.fail("sessionPinningFilters", f, f"a list of {', '.join(SESSION_PINNING_FILTERS)}")

    iam_auth_name = p.string("iamAuth", "REQUIRED")
    iam_auth = IamAuth.REQUIRED
    try:
        iam_auth = IamAuth(iam_auth_name)
    except ValueError:
        p.fail("iamAuth", iam_auth_name, " or ".join(m.value for m in IamAuth))

    vpc_cidr = p.string("vpcCidr", "10.0.0.0/16")
    try:
        net = ipaddress.ip_network(vpc_cidr, strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 24:
            raise ValueError
    except ValueError:
        p.fail("vpcCidr", vpc_cidr, "an IPv4 network from /16 to /24 with no host bits set, e.g. 10.0.0.0/16")

    instance_class = p.string("dbInstanceClass", "db.t3.micro")
    if not re.fullmatch(r"db\.[a-z0-9]+\.[a-z0-9]+", instance_class):
        p.fail(
            "dbInstanceClass",
            instance_class,
            "an RDS instance class such as db.t3.micro (db.<family>.<size>)",
        )
    engine_version = p.string("dbEngineVersion", "8.0")
    if not re.fullmatch(r"8\.(0|4)(\.\d+)?", engine_version):
        p.fail("dbEngineVersion", engine_version, "MySQL 8.0 or 8.4, optionally with a patch level (8.0.39)")

    db_name = p.string("dbName", "testdb")
    if not (_IDENTIFIER.fullmatch(db_name) and len(db_name) <= 64):
        p.fail("dbName", db_name, "a letter, then letters, digits or _, at most 64 characters")
    username = p.string("dbUsername", "admin")
    if (
        not (_IDENTIFIER.fullmatch(username) and len(username) <= 16)
        or username.lower() in RESERVED_USERNAMES
    ):
        p.fail(
            "dbUsername",
            username,
            "a letter, then letters, digits or _, at most 16 characters, not one of "
            + ", ".join(sorted(RESERVED_USERNAMES)),
        )

    settings = Settings(
        project=project,
        stack=stack,
        pool_profile=profile,
        pool=PoolSettings(idle, max_pct, max_idle, borrow),
        init_query=p.string("initQuery", "") or None,
        session_pinning_filters=tuple(filters),
        require_tls=p.boolean("requireTls", True),
        debug_logging=p.boolean("debugLogging", False),
        iam_auth=iam_auth,
        vpc_cidr=vpc_cidr,
        az_count=p.in_range("azCount", p.integer("azCount", 2), 2, 6),
        db_instance_class=instance_class,
        db_engine_version=engine_version,
        db_allocated_storage=p.in_range("dbAllocatedStorage", p.integer("dbAllocatedStorage", 20), 20, 65536),
        db_name=db_name,
        db_username=username,
        db_backup_retention_days=p.in_range(
            "dbBackupRetentionDays", p.integer("dbBackupRetentionDays", 7), 7, 35
        ),
        db_multi_az=p.boolean("dbMultiAz", False),
        db_deletion_protection=p.boolean("dbDeletionProtection", False),
        db_skip_final_snapshot=p.boolean("dbSkipFinalSnapshot", True),
        probe_timeout=p.in_range("probeTimeout", p.integer("probeTimeout", 30), 5, 30),
        probe_memory_size=p.in_range("probeMemorySize", p.integer("probeMemorySize", 256), 128, 10240),
    )
    if p.problems:
        raise ConfigError(project, p.problems)
    return settings


class _Parser:
    """Typed reads of raw config strings that record problems instead of stopping at the first."""

    def __init__(self, get: Callable[[str], str | None]) -> None:
        self._get = get
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{key}: {json.dumps(value)} is not allowed; expected {allowed}")

    def string(self, key: str, default: str) -> str:
        raw = self._get(key)
        return default if raw is None else raw

    def integer(self, key: str, default: int) -> int:
        raw = self._get(key)
        if raw is None:
            return default
        try:
            value = float(raw.strip())
            if not value.is_integer():
                raise ValueError
            return int(value)
        except ValueError:
            self.fail(key, raw, "an integer")
            return default

    def boolean(self, key: str, default: bool) -> bool:
        raw = self._get(key)
        if raw is None:
            return default
        if raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        self.fail(key, raw, "true or false")
        return default

    def string_list(self, key: str) -> list[str]:
        raw = self._get(key)
        if raw is None or raw.strip() == "":
            return []
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, raw, "a list of strings, e.g. [EXCLUDE_VARIABLE_SETS]")
            return []
        return value

    def in_range(self, key: str, value: int, low: int, high: int | None, note: str = "") -> int:
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            self.fail(key, value, f"an integer {bound}{note}")
        return value
