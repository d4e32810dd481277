"""Stack settings: every config key read once, checked, and frozen into sections before any resource is declared.

The program reads config in exactly one place (`Settings.from_config`). Each section (network, credentials,
database, proxy, probe, security, monitoring; the optional flow_logs and rotation) is parsed by its own function into the section type its component defines, and is
handed whole to that component; components never call `pulumi.Config()`. Values arrive as the strings the
Pulumi CLI passes (`"900"`, `"true"`, `'["EXCLUDE_VARIABLE_SETS"]'`), so parsing and type errors are ours to
report. All problems are collected and raised together in one `ConfigError`, ordered as Pulumi.yaml declares
the keys.

Defaults are written once, in Pulumi.yaml: the CLI passes them to the program, and this module reads the
same file for any key the CLI did not pass (unit tests, `parse_settings` with partial config).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.credentials import CredentialsSettings
from components.database import (
    AURORA_CLASS,
    AURORA_VERSION,
    MAX_AURORA_READERS,
    MAX_READ_REPLICAS,
    MIN_MULTI_AZ_CLUSTER_PATCH,
    MULTI_AZ_CLUSTER_FAMILIES,
    MULTI_AZ_CLUSTER_VERSION,
    SERVERLESS_CLASS,
    TOPOLOGY_DEFAULTS,
    DatabaseSettings,
    ServerlessCapacity,
    Topology,
)
from components.dr import DrPrimarySettings, DrSettings, DrStandbySettings
from components.encryption import (
    DB_LOG_EXPORTS,
    LOG_RETENTION_DAYS,
    MONITORING_INTERVALS,
    ROTATION_MAX_DAYS,
    SecuritySettings,
)
from components.flow_logs import FlowLogSettings, FlowLogTraffic
from components.monitoring import FREE_LOCAL_STORAGE, FREE_STORAGE_SPACE, MonitoringSettings
from components.networking import NetworkSettings
from components.probe import ProbeSettings
from components.proxy import (
    PROFILES,
    SESSION_PINNING_FILTERS,
    AuthScheme,
    ClientPasswordAuthType,
    IamAuth,
    PoolProfile,
    PoolSettings,
    ProxySettings,
)
from components.rotation import RotationSettings
from components.users import (
    ALLOWED_PRIVILEGES,
    FORBIDDEN_PRIVILEGES,
    MAX_SECRETS_PER_PROXY,
    PROBE_PRIVILEGES,
    RESERVED_USER_NAMES,
    SYSTEM_DATABASES,
    DbUser,
    UsersSettings,
)

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
FROM_PROFILE = -1
"""Pool keys default to -1 in Pulumi.yaml: "take this value from poolProfile"."""
# RDS rejects these as master user names (RDS for MySQL user guide, "Master user name" constraints).
RESERVED_USERNAMES = frozenset({"rdsadmin", "rdsrepladmin", "root", "mysql", "mysql.sys", "mysql.session"})
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _declarations() -> dict[str, Any]:
    return dict((yaml.safe_load(PROJECT_FILE.read_text()) or {}).get("config") or {})


DECLARED: Mapping[str, Mapping[str, Any]] = _declarations()
"""Pulumi.yaml's config declarations, in file order."""


def _as_config_string(value: Any) -> str:
    """How the CLI hands a declared default to the program: strings as-is, everything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


DEFAULTS: Mapping[str, str] = {
    k: _as_config_string(d["default"]) for k, d in DECLARED.items() if "default" in d
}


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
    """Everything the stack needs to know, validated, one section per component."""

    project: str
    stack: str
    network: NetworkSettings
    credentials: CredentialsSettings
    database: DatabaseSettings
    proxy: ProxySettings
    probe: ProbeSettings
    security: SecuritySettings
    flow_logs: FlowLogSettings | None
    rotation: RotationSettings | None
    users: UsersSettings
    monitoring: MonitoringSettings | None
    """None when monitoringEnabled is false: the stack then declares no monitoring resource."""
    dr: DrSettings | None
    """None: no DR. A primary (`drRegion`) or a standby (`drPrimaryStack`)."""

    @staticmethod
    def from_config(config: pulumi.Config, project: str, stack: str, region: str | None = None) -> Settings:
        """Read the project's config (as `pulumi up` passes it), warn about undeclared keys, and validate.

        `region` is the stack's `aws:region` (the one key outside the project namespace the settings use: the
        DR rules compare against it); `__main__.py` reads it with the project's config."""
        for message in undeclared_key_warnings(_config_keys(), project):
            pulumi.warn(message)
        return parse_settings(lambda key: config.get(key), project, stack, region=region)


def resource_prefix(project: str, stack: str) -> str:
    """`<project>-<stack>` made into a valid RDS identifier (letter first, [a-z0-9-], no `--`)."""
    raw = re.sub(r"[^a-z0-9]+", "-", f"{project}-{stack}".lower()).strip("-")
    if not raw or not raw[0].isalpha():
        raw = f"p-{raw}".rstrip("-")
    return raw[:50].rstrip("-")


def _config_keys() -> set[str]:
    """Every config key the engine passed to this program (fully qualified)."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.get_config_env()) | set(runtime_config.CONFIG.get())


def undeclared_key_warnings(keys: Iterable[str], project: str) -> list[str]:
    """The CLI passes a project key that Pulumi.yaml does not declare through silently; the program ignores
    it. Say so, with the closest declared key (a misspelling is the usual cause)."""
    messages = []
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace != project or name in DECLARED:
            continue
        close = difflib.get_close_matches(name, list(DECLARED), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "the declared keys are listed in Pulumi.yaml"
        messages.append(f"{key} is not a declared configuration key and is ignored; {hint}")
    return messages


def parse_settings(
    get: Callable[[str], str | None], project: str, stack: str, region: str | None = None
) -> Settings:
    """Parse raw config strings section by section; raise one ConfigError listing every bad key.

    `region` is the stack's `aws:region` (None when not set: the provider then fails on its own)."""
    p = _Parser(get)
    prefix = resource_prefix(project, stack)
    security = parse_security(p, prefix)
    proxy = parse_proxy(p, prefix, security)
    credentials = parse_credentials(p, proxy, security)
    users = parse_users(p, prefix, credentials, proxy, security)
    network = parse_network(p, security, users)
    database = parse_database(p, prefix, security, users)
    settings = Settings(
        project=project,
        stack=stack,
        network=network,
        credentials=credentials,
        database=database,
        proxy=proxy,
        probe=parse_probe(p, prefix, users, security),
        security=security,
        flow_logs=parse_flow_logs(p, prefix, security),
        rotation=parse_rotation(prefix, security),
        users=users,
        monitoring=parse_monitoring(p, database),
        dr=parse_dr(p, project, region, network, credentials, database, security, users),
    )
    if p.problems:
        order = {key: i for i, key in enumerate(DECLARED)}
        # `dbUsers[2].name` sorts with `dbUsers`.
        problems = sorted(p.problems, key=lambda item: order.get(item[0].split("[")[0], len(order)))
        raise ConfigError(project, [message for _, message in problems])
    return settings


def parse_network(p: _Parser, security: SecuritySettings, users: UsersSettings) -> NetworkSettings:
    vpc_cidr = p.string("vpcCidr")
    try:
        net = ipaddress.ip_network(vpc_cidr, strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 24:
            raise ValueError
    except ValueError:
        p.fail("vpcCidr", vpc_cidr, "an IPv4 network from /16 to /24 with no host bits set, e.g. 10.0.0.0/16")
    return NetworkSettings(
        vpc_cidr=vpc_cidr,
        az_count=p.in_range("azCount", p.integer("azCount"), 2, 6),
        # Something in the private subnets reads Secrets Manager: the rotation function (issue 14), which adds
        # its own rule to the endpoint, and issue 8's users bootstrap (and the probe when it logs in with a
        # password), whose rules Networking builds.
        secrets_manager_endpoint=security.rotation,
        users_function=True,
        secrets_manager_clients=("users", "probe") if users.clients_read_secrets else ("users",),
    )


def _username(p: _Parser, key: str, max_length: int) -> str:
    name = p.string(key)
    if not (_IDENTIFIER.fullmatch(name) and len(name) <= max_length) or name.lower() in RESERVED_USERNAMES:
        p.fail(
            key,
            name,
            f"a letter, then letters, digits or _, at most {max_length} characters, not one of "
            + ", ".join(sorted(RESERVED_USERNAMES)),
        )
    return name


def parse_credentials(p: _Parser, proxy: ProxySettings, security: SecuritySettings) -> CredentialsSettings:
    return CredentialsSettings(
        username=_username(p, "dbUsername", 16),
        protect=p.boolean("dbDeletionProtection"),
        client_iam_auth=proxy.iam_auth,
        rotated=security.rotation,
    )


def parse_database(
    p: _Parser, prefix: str, security: SecuritySettings, users: UsersSettings
) -> DatabaseSettings:
    topology = _topology(p)
    own = TOPOLOGY_DEFAULTS[topology]
    # "" (the declared default) means the topology's own class and version.
    instance_class = p.string("dbInstanceClass") or own.instance_class
    engine_version = p.string("dbEngineVersion") or own.engine_version
    _check_class_and_version(p, topology, instance_class, engine_version)
    db_name = p.string("dbName")
    if not (_IDENTIFIER.fullmatch(db_name) and len(db_name) <= 64):
        p.fail("dbName", db_name, "a letter, then letters, digits or _, at most 64 characters")
    reader_count = _reader_count(p, topology, own.reader_count)
    reader_class = _reader_instance_class(p, topology)
    serverless = _serverless_capacity(p)
    multi_az = p.boolean("dbMultiAz")
    if multi_az and topology is not Topology.INSTANCE:
        p.fail(
            "dbMultiAz",
            multi_az,
            f"false with dbTopology {topology.value}: a cluster spreads its instances over Availability "
            "Zones itself (dbMultiAz adds a standby to an instance)",
        )
    read_replicas = p.in_range("dbReadReplicas", p.integer("dbReadReplicas"), 0, MAX_READ_REPLICAS)
    if read_replicas and topology is not Topology.INSTANCE:
        p.fail(
            "dbReadReplicas",
            read_replicas,
            f"0 with dbTopology {topology.value}: the cluster's readers serve reads (dbReadReplicas adds "
            "replicas to an instance)",
        )
    if topology is Topology.MULTI_AZ_CLUSTER:
        az_count = p.integer("azCount")
        if az_count < 3:
            # RDS user guide, "Creating a Multi-AZ DB cluster": the subnet group must cover three AZs.
            p.fail(
                "azCount",
                az_count,
                "at least 3 with dbTopology multi-az-cluster: a Multi-AZ DB cluster needs subnets in three "
                "Availability Zones",
            )
    _check_proxy_reader_endpoint(p, topology, reader_count)
    blue_green = _blue_green_update(p, topology, read_replicas)
    classes = [instance_class, reader_class or instance_class] if topology is Topology.AURORA else []
    return DatabaseSettings(
        instance_class=instance_class,
        engine_version=engine_version,
        allocated_storage=p.in_range("dbAllocatedStorage", p.integer("dbAllocatedStorage"), 20, 65536),
        db_name=db_name,
        backup_retention_days=p.in_range("dbBackupRetentionDays", p.integer("dbBackupRetentionDays"), 7, 35),
        multi_az=multi_az,
        deletion_protection=p.boolean("dbDeletionProtection"),
        skip_final_snapshot=p.boolean("dbSkipFinalSnapshot"),
        final_snapshot_prefix=f"{prefix}-final",
        topology=topology,
        reader_count=reader_count,
        reader_instance_class=reader_class,
        serverless=serverless if SERVERLESS_CLASS in classes else None,
        read_replicas=read_replicas,
        identifier=_instance_identifier(p, prefix),
        log_exports=security.db_log_exports,
        log_retention_days=security.log_retention_days,
        monitoring_interval=security.db_monitoring_interval,
        password_rotated=security.rotation,
        blue_green_update=blue_green,
        iam_database_authentication=users.scheme is AuthScheme.IAM_AUTH,
    )


# --- Blue/green updates (issue 11) --------------------------------------------------------------------------


def _blue_green_update(p: _Parser, topology: Topology, read_replicas: int) -> bool:
    """`dbBlueGreenUpdate`: the provider's in-place blue/green path exists for DB instances only and "cannot be
    used with DB Instances with replicas" (provider docs of `aws.rds.Instance`, "Low-Downtime Updates");
    backups, which it also needs, are always on here (dbBackupRetentionDays >= 7)."""
    enabled = p.boolean("dbBlueGreenUpdate")
    if enabled and topology is not Topology.INSTANCE:
        p.fail(
            "dbBlueGreenUpdate",
            enabled,
            f"false with dbTopology {topology.value}: blue/green updates through the provider are for a DB "
            "instance (dbTopology instance)",
        )
    if enabled and read_replicas:
        p.fail(
            "dbBlueGreenUpdate",
            enabled,
            f"false with dbReadReplicas {read_replicas}: the provider's blue/green update cannot run on an "
            "instance with read replicas (use tools/bluegreen, or drop the replicas first)",
        )
    return enabled


# --- Read scaling (issue 9): the topology and what fits it -------------------------------------------------

# AWS, "Using reader endpoints with Aurora clusters" (RDS Proxy endpoints, Aurora user guide):
READER_ENDPOINT_ON_INSTANCE = (
    '"Requests also fail if the target of the proxy is an RDS instance instead of an Aurora cluster." '
    "(AWS, RDS Proxy endpoints, https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
    "rds-proxy-endpoints.html)"
)
# Aurora Serverless v2 capacity: half-ACU steps, at most 256 ACUs on recent Aurora versions (128 on older
# ones) (RDS API reference, ServerlessV2ScalingConfiguration). A minimum of 0 turns on auto-pause, which RDS Proxy
# rules out: the proxy's connections keep the instance from pausing (Aurora user guide, "Scaling to Zero ACUs
# with automatic pause and resume", prerequisites and limitations; AWS's aurora-mysql skill notes in
# aws/agent-toolkit-for-aws list RDS Proxy as incompatible with scale-to-zero).
MIN_ACU, MAX_ACU = 0.5, 256.0
TOPOLOGY_OWN = -1
"""dbReaderCount defaults to -1 in Pulumi.yaml: "the topology's own number of readers"."""


def _topology(p: _Parser) -> Topology:
    name = p.string("dbTopology")
    try:
        return Topology(name)
    except ValueError:
        p.fail("dbTopology", name, ", ".join(t.value for t in Topology))
        return Topology(DEFAULTS["dbTopology"])


def _check_class_and_version(
    p: _Parser, topology: Topology, instance_class: str, engine_version: str
) -> None:
    if topology is Topology.INSTANCE:
        if not re.fullmatch(r"db\.[a-z0-9]+\.[a-z0-9]+", instance_class):
            p.fail(
                "dbInstanceClass",
                instance_class,
                "an RDS instance class such as db.t3.micro (db.<family>.<size>)",
            )
        if not re.fullmatch(r"8\.(0|4)(\.\d+)?", engine_version):
            p.fail(
                "dbEngineVersion", engine_version, "MySQL 8.0 or 8.4, optionally with a patch level (8.0.39)"
            )
    elif topology is Topology.AURORA:
        if not AURORA_CLASS.fullmatch(instance_class):
            p.fail(
                "dbInstanceClass",
                instance_class,
                "with dbTopology aurora an Aurora MySQL class: db.r<generation>.<size> (e.g. db.r6g.large), "
                f"db.x2g.<size>, db.t3/db.t4g .medium or .large, or {SERVERLESS_CLASS}",
            )
        if not AURORA_VERSION.fullmatch(engine_version):
            p.fail(
                "dbEngineVersion",
                engine_version,
                "with dbTopology aurora an Aurora MySQL 3 version, 8.0.mysql_aurora.3.<minor>[.<patch>] "
                f"(e.g. {TOPOLOGY_DEFAULTS[Topology.AURORA].engine_version})",
            )
    else:
        family = instance_class.split(".")[1] if instance_class.count(".") == 2 else ""
        if not instance_class.startswith("db.") or family not in MULTI_AZ_CLUSTER_FAMILIES:
            p.fail(
                "dbInstanceClass",
                instance_class,
                "with dbTopology multi-az-cluster a class of a family Multi-AZ DB clusters offer: "
                + ", ".join(f"db.{f}" for f in MULTI_AZ_CLUSTER_FAMILIES)
                + f" (smallest: {TOPOLOGY_DEFAULTS[Topology.MULTI_AZ_CLUSTER].instance_class})",
            )
        match = MULTI_AZ_CLUSTER_VERSION.fullmatch(engine_version)
        too_old = bool(
            match
            and match.group(1) == "0"
            and match.group(3)
            and int(match.group(3)) < MIN_MULTI_AZ_CLUSTER_PATCH
        )
        if not match or too_old:
            p.fail(
                "dbEngineVersion",
                engine_version,
                "with dbTopology multi-az-cluster MySQL 8.0 "
                f"(8.0.{MIN_MULTI_AZ_CLUSTER_PATCH} or later when a patch level is given) or 8.4",
            )


def _reader_count(p: _Parser, topology: Topology, own: int) -> int:
    count = p.integer("dbReaderCount")
    if count == TOPOLOGY_OWN:
        return own
    if topology is Topology.AURORA:
        return p.in_range(
            "dbReaderCount", count, 0, MAX_AURORA_READERS, note=f" (or -1 for the topology's own, {own})"
        )
    if topology is Topology.MULTI_AZ_CLUSTER:
        if count != own:
            p.fail(
                "dbReaderCount", count, f"-1 or {own} with dbTopology multi-az-cluster: it always has {own}"
            )
        return own
    p.fail(
        "dbReaderCount",
        count,
        "-1 with dbTopology instance: readers belong to aurora or multi-az-cluster (for an instance, "
        "dbReadReplicas adds read replicas)",
    )
    return own


def _reader_instance_class(p: _Parser, topology: Topology) -> str | None:
    reader_class = p.string("dbReaderInstanceClass")
    if not reader_class:
        return None
    if topology is not Topology.AURORA:
        p.fail(
            "dbReaderInstanceClass",
            reader_class,
            f'"" with dbTopology {topology.value} (Aurora readers only)',
        )
    elif not AURORA_CLASS.fullmatch(reader_class):
        p.fail(
            "dbReaderInstanceClass",
            reader_class,
            "an Aurora MySQL class: db.r<generation>.<size>, db.x2g.<size>, db.t3/db.t4g .medium or .large, "
            f'or {SERVERLESS_CLASS}; "" for the writer\'s class',
        )
    return reader_class


def _acu(p: _Parser, key: str) -> float:
    raw = p.string(key)
    allowed = (
        f'a number of ACUs from {MIN_ACU:g} to {MAX_ACU:g} in steps of 0.5, as a string (e.g. "0.5"); '
        "0 is not allowed: an instance paused at 0 ACUs does not serve RDS Proxy"
    )
    try:
        value = float(raw)
    except ValueError:
        p.fail(key, raw, allowed)
        return float(DEFAULTS[key])
    if not (MIN_ACU <= value <= MAX_ACU) or (value * 2) != int(value * 2):
        p.fail(key, raw, allowed)
    return value


def _serverless_capacity(p: _Parser) -> ServerlessCapacity:
    low, high = _acu(p, "dbServerlessMinCapacity"), _acu(p, "dbServerlessMaxCapacity")
    if MIN_ACU <= low <= MAX_ACU and MIN_ACU <= high <= MAX_ACU and high < low:
        p.fail(
            "dbServerlessMaxCapacity",
            p.string("dbServerlessMaxCapacity"),
            f"at least dbServerlessMinCapacity ({low:g})",
        )
    return ServerlessCapacity(min_acu=low, max_acu=high)


def _check_proxy_reader_endpoint(p: _Parser, topology: Topology, reader_count: int) -> None:
    if not p.boolean("proxyReaderEndpoint"):
        return
    if topology is Topology.INSTANCE:
        p.fail(
            "proxyReaderEndpoint",
            True,
            f"false with dbTopology instance. {READER_ENDPOINT_ON_INSTANCE} A READ_ONLY proxy endpoint works "
            "with dbTopology aurora (with dbReaderCount >= 1) or multi-az-cluster (RDS user guide, "
            '"Proxy endpoints for Multi-AZ DB clusters")',
        )
    elif topology is Topology.AURORA and reader_count == 0:
        p.fail(
            "proxyReaderEndpoint",
            True,
            "false when dbReaderCount is 0: a READ_ONLY proxy endpoint needs at least one Aurora reader "
            "(RDS Proxy endpoints, Aurora user guide); set dbReaderCount >= 1",
        )


def _iam_auth(p: _Parser) -> IamAuth:
    name = p.string("iamAuth")
    try:
        return IamAuth(name)
    except ValueError:
        p.fail("iamAuth", name, " or ".join(m.value for m in IamAuth))
        return IamAuth.REQUIRED


def parse_proxy(p: _Parser, prefix: str, security: SecuritySettings) -> ProxySettings:
    profile_name = p.string("poolProfile")
    profile = PoolProfile.RECIPE
    try:
        profile = PoolProfile(profile_name)
    except ValueError:
        p.fail("poolProfile", profile_name, f"one of {', '.join(m.value for m in PoolProfile)}")
    base = PROFILES[profile]

    def pool_key(key: str, preset: int, low: int, high: int) -> int:
        value = p.integer(key)
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

    filters = p.string_list(
        "sessionPinningFilters",
        example="in the stack file `rds-proxy:sessionPinningFilters: [EXCLUDE_VARIABLE_SETS]`, or "
        "`pulumi config set --path 'sessionPinningFilters[0]' EXCLUDE_VARIABLE_SETS`",
    )
    for f in filters:
        if f not in SESSION_PINNING_FILTERS:
            p.fail("sessionPinningFilters", f, f"a list of {', '.join(SESSION_PINNING_FILTERS)}")

    return ProxySettings(
        name=prefix,
        pool_profile=profile,
        pool=PoolSettings(idle, max_pct, max_idle, borrow),
        init_query=p.string("initQuery") or None,
        session_pinning_filters=tuple(filters),
        require_tls=p.boolean("requireTls"),
        debug_logging=p.boolean("debugLogging"),
        iam_auth=_iam_auth(p),
        log_retention_days=security.log_retention_days,
        reader_endpoint=p.boolean("proxyReaderEndpoint"),  # checked against the topology in parse_database
        default_auth_scheme=_default_auth_scheme(p),
    )


def _default_auth_scheme(p: _Parser) -> AuthScheme:
    name = p.string("proxyDefaultAuthScheme")
    try:
        scheme = AuthScheme(name)
    except ValueError:
        p.fail("proxyDefaultAuthScheme", name, " or ".join(m.value for m in AuthScheme))
        return AuthScheme.NONE
    if scheme is AuthScheme.IAM_AUTH and not p.boolean("requireTls"):
        p.fail(
            "proxyDefaultAuthScheme",
            name,
            "NONE while requireTls is false (IAM_AUTH sends IAM tokens, which need TLS: set requireTls: true)",
        )
    return scheme


def parse_probe(p: _Parser, prefix: str, users: UsersSettings, security: SecuritySettings) -> ProbeSettings:
    return ProbeSettings(
        function_name=f"{prefix}-probe",
        # Never the master user: its own least-privileged user (probeUser), logged in as the users section says.
        db_user=users.probe_user.name,
        timeout=p.in_range("probeTimeout", p.integer("probeTimeout"), 5, 30),
        memory_size=p.in_range("probeMemorySize", p.integer("probeMemorySize"), 128, 10240),
        log_retention_days=security.log_retention_days,
    )


# --- security section (issue 14) ---------------------------------------------------------------------------
_KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")


def parse_security(p: _Parser, prefix: str) -> SecuritySettings:
    key = p.string("kmsKeyArn").strip()
    if key and not _KMS_KEY_ARN.fullmatch(key):
        p.fail(
            "kmsKeyArn",
            key,
            "empty (the stack creates its own key) or a KMS key ARN, "
            "arn:aws:kms:<region>:<account>:key/<key-id> (not an alias: log groups need the key ARN)",
        )
    retention = p.integer("logRetentionDays")
    if retention not in LOG_RETENTION_DAYS:
        p.fail(
            "logRetentionDays",
            retention,
            "one of CloudWatch Logs' " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        )
    interval = p.integer("dbMonitoringInterval")
    if interval not in MONITORING_INTERVALS:
        p.fail("dbMonitoringInterval", interval, "0 (off), " + ", ".join(map(str, MONITORING_INTERVALS[1:])))
    exports = p.string_list(
        "dbLogExports", example="in the stack file `rds-proxy:dbLogExports: [error, slowquery]`"
    )
    for export in exports:
        if export not in DB_LOG_EXPORTS:
            note = (
                " (audit needs the MARIADB_AUDIT_PLUGIN option group, which this stack does not create)"
                if export == "audit"
                else ""
            )
            p.fail("dbLogExports", export, f"a list of {', '.join(DB_LOG_EXPORTS)}{note}")
    if len(set(exports)) != len(exports):
        p.fail("dbLogExports", exports, "each log at most once")
    rotation = p.in_range(
        "secretRotationDays",
        p.integer("secretRotationDays"),
        0,
        ROTATION_MAX_DAYS,
        note=" (0 turns rotation off)",
    )
    return SecuritySettings(
        kms_key_arn=key or None,
        log_retention_days=retention,
        db_monitoring_interval=interval,
        db_log_exports=tuple(dict.fromkeys(e for e in exports if e in DB_LOG_EXPORTS)),
        secret_rotation_days=rotation,
        key_alias=f"alias/{prefix}",
        # The proxy is named <prefix> and its alarms <proxyName>-<what> (components/monitoring.py).
        alarm_prefix=prefix,
    )


_RDS_IDENTIFIER = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")


def _instance_identifier(p: _Parser, prefix: str) -> str:
    ident = p.string("dbInstanceIdentifier").strip()
    if ident and not _RDS_IDENTIFIER.fullmatch(ident):
        p.fail(
            "dbInstanceIdentifier",
            ident,
            "empty, or an RDS identifier: a lowercase letter, then lowercase letters, digits or hyphens, at most "
            "63, no '--', not ending in '-'",
        )
    return ident or f"{prefix}-db"


def parse_flow_logs(p: _Parser, prefix: str, security: SecuritySettings) -> FlowLogSettings | None:
    flow = p.string("vpcFlowLogs")
    if flow == "NONE":
        return None
    try:
        traffic = FlowLogTraffic(flow)
    except ValueError:
        p.fail("vpcFlowLogs", flow, "ALL, REJECT or NONE")
        return None
    return FlowLogSettings(
        traffic=traffic,
        log_group_name=f"/aws/vpc/flow-logs/{prefix}",
        log_retention_days=security.log_retention_days,
    )


def parse_rotation(prefix: str, security: SecuritySettings) -> RotationSettings | None:
    if not security.rotation:
        return None
    return RotationSettings(
        days=security.secret_rotation_days,
        function_name=f"{prefix}-rotation",
        log_retention_days=security.log_retention_days,
    )


# ---- users (dbUsers, proxyDefaultAuthScheme, probeUser) ----

_USER_KEYS = ("name", "privileges", "database", "clientIamAuth", "clientPasswordAuthType")
_USER_NAME_RULE = (
    "a letter, then letters, digits or _, at most 32 characters, unique ignoring case, not the master user "
    "(dbUsername), not probeUser, not one of " + ", ".join(sorted(RESERVED_USER_NAMES)) + " or mysql.*"
)


def _user_name_problem(name: Any) -> bool:
    return (
        not isinstance(name, str)
        or not (_IDENTIFIER.fullmatch(name) and len(name) <= 32)
        or name.lower() in RESERVED_USER_NAMES  # mysql.* accounts already fail the pattern (".")
    )


def parse_users(
    p: _Parser,
    prefix: str,
    credentials: CredentialsSettings,
    proxy: ProxySettings,
    security: SecuritySettings,
) -> UsersSettings:
    scheme = proxy.default_auth_scheme
    default_db = p.string("dbName")  # its shape is checked by the database section
    if default_db.lower() in SYSTEM_DATABASES:
        p.fail("dbName", default_db, "a database of your own, not " + ", ".join(sorted(SYSTEM_DATABASES)))
    master = credentials.username

    probe_name = p.string("probeUser")
    if _user_name_problem(probe_name) or probe_name.lower() == master.lower():
        p.fail(
            "probeUser",
            probe_name,
            "a letter, then letters, digits or _, at most 32 characters, not the master user (dbUsername), "
            "not one of " + ", ".join(sorted(RESERVED_USER_NAMES)) + " or mysql.*",
        )
    probe_user = DbUser(
        name=probe_name,
        privileges=PROBE_PRIVILEGES,
        database=default_db,
        client_iam_auth=proxy.iam_auth,
        client_password_auth_type=None
        if scheme is AuthScheme.IAM_AUTH
        else ClientPasswordAuthType.MYSQL_CACHING_SHA2_PASSWORD,
    )

    raw = p.raw("dbUsers")
    try:
        entries = json.loads(raw) if raw.strip() else []
    except json.JSONDecodeError:
        entries = None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        p.fail(
            "dbUsers",
            raw,
            'a list of objects such as [{"name": "app", "privileges": ["SELECT", "INSERT"]}] '
            "(in the stack file, or `pulumi config set --path 'dbUsers[0].name' app`)",
        )
        entries = []

    users: list[DbUser] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        at = f"dbUsers[{i}]"
        for key in entry:
            if key not in _USER_KEYS:
                p.fail(f"{at}", key, f"keys among {', '.join(_USER_KEYS)} (only name is required)")
        name = entry.get("name")
        if (
            _user_name_problem(name)
            or name.lower() == master.lower()
            or name.lower() == probe_name.lower()
            or name.lower() in seen
        ):
            p.fail(f"{at}.name", name, _USER_NAME_RULE)
        if isinstance(name, str):
            seen.setdefault(name.lower(), i)

        privileges = entry.get("privileges", ["SELECT"])
        if (
            not isinstance(privileges, list)
            or not privileges
            or not all(isinstance(v, str) for v in privileges)
        ):
            p.fail(f"{at}.privileges", privileges, "a non-empty list of privilege names")
            privileges = []
        normalized: list[str] = []
        for privilege in privileges:
            upper = " ".join(privilege.upper().split())
            if upper not in ALLOWED_PRIVILEGES:
                p.fail(
                    f"{at}.privileges",
                    privilege,
                    "table or routine privileges among "
                    + ", ".join(ALLOWED_PRIVILEGES)
                    + " (never "
                    + ", ".join(FORBIDDEN_PRIVILEGES)
                    + " or other administrative privileges)",
                )
            elif upper not in normalized:
                normalized.append(upper)

        database = entry.get("database", default_db)
        if not (
            isinstance(database, str)
            and _IDENTIFIER.fullmatch(database)
            and len(database) <= 64
            and database.lower() not in SYSTEM_DATABASES
        ):
            p.fail(
                f"{at}.database",
                database,
                "a letter, then letters, digits or _, at most 64 characters, not "
                + ", ".join(sorted(SYSTEM_DATABASES)),
            )

        iam_name = entry.get("clientIamAuth", proxy.iam_auth.value)
        client_iam = proxy.iam_auth
        try:
            client_iam = IamAuth(iam_name)
        except (ValueError, TypeError):
            p.fail(f"{at}.clientIamAuth", iam_name, " or ".join(m.value for m in IamAuth))
        if client_iam is IamAuth.REQUIRED and not proxy.require_tls:
            p.fail(
                f"{at}.clientIamAuth",
                iam_name,
                "DISABLED while requireTls is false (IAM tokens need TLS: set requireTls: true)",
            )

        password_type: ClientPasswordAuthType | None = ClientPasswordAuthType.MYSQL_CACHING_SHA2_PASSWORD
        if "clientPasswordAuthType" in entry:
            chosen = entry["clientPasswordAuthType"]
            if scheme is AuthScheme.IAM_AUTH:
                p.fail(
                    f"{at}.clientPasswordAuthType",
                    chosen,
                    "no clientPasswordAuthType under proxyDefaultAuthScheme IAM_AUTH (clients send IAM "
                    "tokens, never passwords)",
                )
            else:
                try:
                    password_type = ClientPasswordAuthType(chosen)
                except (ValueError, TypeError):
                    p.fail(
                        f"{at}.clientPasswordAuthType",
                        chosen,
                        " or ".join(m.value for m in ClientPasswordAuthType),
                    )
        if scheme is AuthScheme.IAM_AUTH:
            password_type = None

        users.append(
            DbUser(
                name=name if isinstance(name, str) else "",
                privileges=tuple(normalized),
                database=database if isinstance(database, str) else default_db,
                client_iam_auth=client_iam,
                client_password_auth_type=password_type,
            )
        )

    if scheme is AuthScheme.NONE:
        # Each user and the probe user has a secret, and the master's stays registered.
        secrets = len(users) + 2
        if secrets > MAX_SECRETS_PER_PROXY:
            p.fail(
                "dbUsers",
                f"{len(users)} users",
                f"at most {MAX_SECRETS_PER_PROXY - 2} users: RDS Proxy takes {MAX_SECRETS_PER_PROXY} secrets per "
                f"proxy, and the master's and probeUser's count ({secrets} here)",
            )

    return UsersSettings(
        scheme=scheme,
        users=tuple(sorted(users, key=lambda u: u.name)),
        probe_user=probe_user,
        function_name=f"{prefix}-users",
        log_retention_days=security.log_retention_days,
        password_rotated=security.rotation,
    )


# An address SNS can deliver to: something@domain.tld, no spaces, one @ (SNS confirms it by mail).
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def parse_monitoring(p: _Parser, database: DatabaseSettings) -> MonitoringSettings | None:
    """The monitoring section; its keys are checked even when monitoring is off, so turning it back on
    cannot surface a mistake made long ago. The database's topology decides which storage metric to watch."""
    enabled = p.boolean("monitoringEnabled")
    email = p.string("alarmEmail").strip()
    if email and not _EMAIL.fullmatch(email):
        p.fail("alarmEmail", email, "an e-mail address such as ops@example.com, or empty for no subscription")
    settings = MonitoringSettings(
        alarm_email=email or None,
        pool_utilization_percent=p.in_range(
            "alarmPoolUtilizationPercent", p.integer("alarmPoolUtilizationPercent"), 1, 100
        ),
        borrow_latency_ms=p.in_range("alarmBorrowLatencyMs", p.integer("alarmBorrowLatencyMs"), 1, None),
        query_latency_ms=p.in_range("alarmQueryLatencyMs", p.integer("alarmQueryLatencyMs"), 1, None),
        free_storage_metric=FREE_LOCAL_STORAGE
        if database.topology is Topology.AURORA
        else FREE_STORAGE_SPACE,
    )
    return settings if enabled else None


_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+")
_STACK_PART = re.compile(r"[A-Za-z0-9_.-]+")


def parse_dr(
    p: _Parser,
    project: str,
    region: str | None,
    network: NetworkSettings,
    credentials: CredentialsSettings,
    database: DatabaseSettings,
    security: SecuritySettings,
    users: UsersSettings,
) -> DrSettings | None:
    """The DR section: a primary (`drRegion`), a standby (`drPrimaryStack`, `drPromoted`) or None.

    Only the rules config alone can decide are checked here; the ones that need the primary's outputs (its
    drRegion names this stack's region, the VPC ranges don't overlap) are `components.dr.check_primary`,
    run on the StackReference before any resource registers."""
    dr_region = p.string("drRegion")
    primary_stack = p.string("drPrimaryStack")
    promoted = p.boolean("drPromoted")
    if dr_region and not _REGION.fullmatch(dr_region):
        p.fail("drRegion", dr_region, "an AWS region name such as us-west-2, or empty for no DR")
    elif dr_region and dr_region == region:
        p.fail(
            "drRegion",
            dr_region,
            f"a region other than this stack's aws:region ({region}): the standby must survive its outage",
        )
    parts = primary_stack.split("/")
    if primary_stack and not (len(parts) == 3 and all(_STACK_PART.fullmatch(x) for x in parts)):
        p.fail(
            "drPrimaryStack",
            primary_stack,
            f"a fully qualified stack name <organization>/{project}/<stack> (self-managed backends: "
            f"organization/{project}/<stack>), or empty",
        )
    if dr_region and primary_stack:
        p.fail(
            "drPrimaryStack",
            primary_stack,
            "empty when drRegion is set: a stack is either a primary (drRegion) or a standby (drPrimaryStack)",
        )
    if promoted and not primary_stack:
        p.fail("drPromoted", promoted, "false unless drPrimaryStack names this standby's primary stack")
    if (dr_region or primary_stack) and database.topology is not Topology.INSTANCE:
        # A cross-region read replica is an instance feature; Aurora's cross-region copy is a global database.
        key, value = ("drRegion", dr_region) if dr_region else ("drPrimaryStack", primary_stack)
        p.fail(
            key,
            value,
            f"empty with dbTopology {database.topology.value}: DR covers the instance topology only",
        )
    if primary_stack and security.rotation:
        p.fail(
            "secretRotationDays",
            security.secret_rotation_days,
            "0 on a DR standby: the primary rotates its secrets and Secrets Manager copies each new value to "
            "their replicas here",
        )
    if (dr_region or primary_stack) and database.blue_green_update:
        # AWS's in-place blue/green cannot run on an instance with replicas, cross-region ones included, and a
        # standby's instance is itself a replica (issues 11 and 12).
        p.fail(
            "dbBlueGreenUpdate",
            True,
            "false on a DR primary (drRegion) or standby (drPrimaryStack): the provider's blue/green update "
            "cannot run on an instance with a cross-region replica, nor on the replica itself",
        )
    if primary_stack and database.read_replicas:
        p.fail(
            "dbReadReplicas",
            database.read_replicas,
            "0 on a DR standby (its one instance is the primary's replica)",
        )
    if primary_stack:
        return DrStandbySettings(
            primary_stack=primary_stack,
            promoted=promoted,
            region=region or "",
            vpc_cidr=network.vpc_cidr,
            db_user=credentials.username,
            probe_user=users.probe_user.name if users.scheme is AuthScheme.NONE else "",
            entry_users=tuple(u.name for u in users.users) if users.scheme is AuthScheme.NONE else (),
        )
    if dr_region:
        return DrPrimarySettings(region=dr_region)
    return None


class _Parser:
    """Typed reads of raw config strings that record problems instead of stopping at the first.

    A key the CLI did not pass takes its Pulumi.yaml default, parsed like any other value."""

    def __init__(self, get: Callable[[str], str | None]) -> None:
        self._get = get
        self.problems: list[tuple[str, str]] = []
        self._failed: set[tuple[str, str]] = set()

    def fail(self, key: str, value: Any, allowed: str) -> None:
        message = f"{key}: {json.dumps(value)} is not allowed; expected {allowed}"
        if (key, message) not in self._failed:  # a key read by two sections is reported once
            self._failed.add((key, message))
            self.problems.append((key, message))

    def raw(self, key: str) -> str:
        value = self._get(key)
        return DEFAULTS[key] if value is None else value

    def string(self, key: str) -> str:
        return self.raw(key)

    def integer(self, key: str) -> int:
        raw = self.raw(key)
        try:
            value = float(raw.strip())
            if not value.is_integer():
                raise ValueError
            return int(value)
        except ValueError:
            self.fail(key, raw, "an integer")
            return int(DEFAULTS[key])

    def boolean(self, key: str) -> bool:
        raw = self.raw(key)
        if raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        self.fail(key, raw, "true or false")
        return DEFAULTS[key] == "true"

    def string_list(self, key: str, example: str) -> list[str]:
        raw = self.raw(key)
        if raw.strip() == "":
            return []
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, raw, f"a list of strings, e.g. {example}")
            return []
        return value

    def in_range(self, key: str, value: int, low: int, high: int | None, note: str = "") -> int:
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            self.fail(key, value, f"an integer {bound}{note}")
        return value
