"""DbUsers: the database users applications log in as, their secrets or IAM grants, and the bootstrap Lambda
that creates them inside the VPC.

RDS has no API for MySQL users, so a second Lambda (`lambda_src/users_function.py`) converges the server to
the configured list; `aws.lambda_.Invocation` with `lifecycle_scope="CRUD"` runs it on create, on every change
of the list and on delete. Vocabulary of the users (`DbUser`, `UsersSettings`, the privilege allow-list)
lives here; `settings.py` parses config into it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.credentials import generated_password
from components.iam import db_user_arn, secret_read_policy
from components.lambda_package import LAMBDA_SRC, RUNTIME, write_package
from components.proxy import AuthScheme, ClientPasswordAuthType, IamAuth, ProxyAuth
from components.roles import lambda_vpc_role

HANDLER = "users_function.lambda_handler"
MODULES = ("users_function.py",)
RDS_CA_BUNDLE = "rds-global-bundle.pem"
"""The RDS certificate bundle, shipped beside the handler when `lambda_src/` has it. The bootstrap verifies
the database's own certificate, which the RDS CA issues (RDS user guide, "Using SSL/TLS to encrypt a
connection to a DB instance or cluster"; bundle at https://truststore.pki.rds.amazonaws.com/global/
global-bundle.pem); that CA is not a public root, so the system trust store alone cannot verify it."""
LAMBDA_TASK_ROOT = "/var/task"

# Table- and routine-level privileges a user may be granted on `<database>.*` (MySQL 8.0 reference,
# "Privileges Provided by MySQL", static privileges with database/table/routine scope). Administrative ones
# (ALL, SUPER, GRANT OPTION, FILE, PROCESS, SHUTDOWN, CREATE USER, RELOAD, REPLICATION *, ...) are never
# allowed: they reach beyond one database or let a user grant itself more.
ALLOWED_PRIVILEGES = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "REFERENCES",
    "CREATE VIEW",
    "SHOW VIEW",
    "TRIGGER",
    "EVENT",
    "EXECUTE",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
)
FORBIDDEN_PRIVILEGES = ("ALL", "SUPER", "GRANT OPTION", "FILE", "PROCESS", "SHUTDOWN", "CREATE USER")
"""Named in error messages because they are the ones people ask for; anything not allowed is refused."""
PROBE_PRIVILEGES = ("SHOW VIEW",)
"""The probe user's grant on dbName. MySQL lets a user open a database it holds any privilege on; SHOW VIEW
is the smallest of them (it reads no table data), and the probe query (`SELECT 1, CONNECTION_ID(),
CURRENT_USER()`) needs no table at all."""
RESERVED_USER_NAMES = frozenset({"rdsadmin", "rdsrepladmin", "rdsproxyadmin", "root"})
"""Accounts RDS and RDS Proxy own; `mysql.*` accounts are reserved too (they fail the name pattern)."""
SYSTEM_DATABASES = frozenset(
    {"mysql", "information_schema", "performance_schema", "sys", "rdsproxy_bootstrap"}
)
"""The server's own schemas and the bootstrap's bookkeeping schema: no user is granted anything there (the
bootstrap refuses them too; checked here so `pulumi up` fails before declaring anything)."""
MAX_SECRETS_PER_PROXY = 200
"""RDS Proxy quota: secrets (auth entries) per proxy (RDS user guide, "Quotas and limitations for RDS Proxy")."""
FUNCTION_TIMEOUT = 300
"""Seconds; converging 200 users takes a fraction of it (README, "Database users")."""
FUNCTION_MEMORY = 256


@dataclass(frozen=True, kw_only=True)
class DbUser:
    """One database user: what it may do on which database, and how clients of the proxy log in as it."""

    name: str
    privileges: tuple[str, ...]
    database: str
    client_iam_auth: IamAuth
    client_password_auth_type: ClientPasswordAuthType | None
    """None under IAM_AUTH, where clients never send a password."""


@dataclass(frozen=True, kw_only=True)
class UsersSettings:
    """The users' section of the stack config: the scheme, the `dbUsers` entries and the probe user."""

    scheme: AuthScheme
    users: tuple[DbUser, ...]
    """The `dbUsers` entries, sorted by name."""
    probe_user: DbUser
    function_name: str
    log_retention_days: int
    password_rotated: bool = False
    """Secrets Manager rotates the users' passwords (`secretRotationDays`): Pulumi must not write the generated
    one back; the bootstrap always reads the secret's current value."""

    @property
    def log_group_name(self) -> str:
        """The bootstrap function's log group (the stack key's policy names every log group it encrypts)."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def all_users(self) -> tuple[DbUser, ...]:
        """The probe user and every entry, sorted by name: the order of secrets, auth entries and input."""
        return tuple(sorted((self.probe_user, *self.users), key=lambda u: u.name))

    @property
    def clients_read_secrets(self) -> bool:
        """Whether a client of the proxy (the probe) logs in with a password it reads from Secrets Manager."""
        return any(not self.client_uses_iam(u) for u in self.all_users)

    def client_uses_iam(self, user: DbUser) -> bool:
        """Whether clients of the proxy log in as `user` with an IAM token rather than its password."""
        return self.scheme is AuthScheme.IAM_AUTH or user.client_iam_auth is IamAuth.REQUIRED


@dataclass(frozen=True, kw_only=True)
class Login:
    """How a client of the proxy logs in as one user: an IAM token, or the password in `secret_arn`."""

    iam: bool
    secret_arn: pulumi.Output[str] | None
    kms_key_arn: pulumi.Input[str] | None = None


@dataclass(frozen=True, kw_only=True)
class DbUsersArgs:
    """Where the bootstrap runs, the database it reaches directly, the master secret, and its own section."""

    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    db_address: pulumi.Input[str]
    """The instance's own hostname: the bootstrap talks to the database, not to the proxy."""
    db_port: int
    master_secret_arn: pulumi.Input[str]
    network_ready: Sequence[pulumi.Resource]
    """Rules and the Secrets Manager endpoint the function needs before it is invoked."""
    settings: UsersSettings
    db_ready: Sequence[pulumi.Resource] = ()
    replicas: Sequence[aws.secretsmanager.SecretReplicaArgs] = ()
    """A DR primary's secret replicas (issue 12): every user's secret is copied to the standby's region."""
    """What must exist besides `db_address` before the bootstrap logs in (a cluster's instances)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the master and user secrets and of the log group, if any."""
    source_dir: Path = field(default=LAMBDA_SRC)


class DbUsers(pulumi.ComponentResource):
    """Database users: per user a secret (NONE) or an IAM identity (IAM_AUTH), the proxy auth entries, and the
    bootstrap Lambda that creates, narrows and drops the users on the server."""

    auths: list[ProxyAuth]
    """One auth entry per user secret, sorted by user name (empty under IAM_AUTH)."""
    secret_arns: dict[str, pulumi.Output[str]]
    """User → its secret's ARN (NONE only)."""
    logins: dict[str, Login]
    """User → how the probe (or any client) logs in as it through the proxy."""
    function_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    iam_db_users: list[str]
    """The users the proxy logs in as with IAM (every user under IAM_AUTH, none under NONE)."""
    invocation_result: pulumi.Output[str]
    """What the bootstrap answered on its last run (created, changed, dropped, left alone)."""

    def __init__(self, name: str, args: DbUsersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:DbUsers", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        with_secrets = s.scheme is AuthScheme.NONE

        self.secret_arns = {}
        secret_values: list[pulumi.Resource] = []
        for user in s.all_users if with_secrets else ():
            # Same alphabet rules as the master password: RDS refuses "/", "@", '"' and spaces.
            password = generated_password(f"{name}-{user.name}-password", child)
            # Not protected: removing a user from dbUsers must be able to remove its secret.
            secret = aws.secretsmanager.Secret(
                f"{name}-{user.name}-secret",
                description=f"Credentials of database user {user.name}, read by RDS Proxy and the bootstrap",
                kms_key_id=args.kms_key_arn,
                replicas=list(args.replicas) or None,
                opts=child,
            )
            # The shape AWS's rotation functions expect (Secrets Manager user guide, "JSON structure of
            # Amazon RDS credentials secrets").
            secret_values.append(
                aws.secretsmanager.SecretVersion(
                    f"{name}-{user.name}-secret-value",
                    secret_id=secret.id,
                    secret_string=pulumi.Output.json_dumps(
                        {
                            "username": user.name,
                            "password": password.result,
                            "engine": "mysql",
                            "host": args.db_address,
                            "port": args.db_port,
                            "dbname": user.database,
                        }
                    ),
                    # After a rotation the secret's current version holds the new password; without this the
                    # next `pulumi up` would write the generated (old) one back (issue 14).
                    opts=pulumi.ResourceOptions(
                        parent=self, ignore_changes=["secret_string"] if s.password_rotated else None
                    ),
                )
            )
            self.secret_arns[user.name] = secret.arn

        self.auths = [
            ProxyAuth(
                secret_arn=self.secret_arns[u.name],
                kms_key_arn=args.kms_key_arn,
                client_iam_auth=u.client_iam_auth,
                client_password_auth_type=u.client_password_auth_type
                or ClientPasswordAuthType.MYSQL_CACHING_SHA2_PASSWORD,
                description=f"Database user {u.name}",
            )
            for u in s.all_users
            if with_secrets
        ]
        self.logins = {
            u.name: Login(
                iam=s.client_uses_iam(u),
                secret_arn=None if s.client_uses_iam(u) else self.secret_arns.get(u.name),
                kms_key_arn=args.kms_key_arn,
            )
            for u in s.all_users
        }

        role, vpc_access = lambda_vpc_role(
            name, "Execution role of the database users bootstrap Lambda", args.master_secret_arn, child
        )
        readable = [args.master_secret_arn, *self.secret_arns.values()]
        secret_access = aws.iam.RolePolicy(
            f"{name}-secret-access",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(pulumi.Output.all(*readable), args.kms_key_arn).apply(
                    lambda a: secret_read_policy(a[0], [a[1]])
                )
            ),
            opts=child,
        )
        # Created before the function so Lambda doesn't auto-create a group that never expires.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=s.log_group_name,
            retention_in_days=s.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )

        modules = list(MODULES)
        environment: dict[str, pulumi.Input[str]] = {"DB_HOST": args.db_address, "DB_PORT": str(args.db_port)}
        if (args.source_dir / RDS_CA_BUNDLE).is_file():
            modules.append(RDS_CA_BUNDLE)
            environment["DB_CA_BUNDLE"] = f"{LAMBDA_TASK_ROOT}/{RDS_CA_BUNDLE}"
        else:
            pulumi.warn(
                f"lambda_src/{RDS_CA_BUNDLE} is missing: the users bootstrap verifies the database's certificate "
                "against the system trust store only, which does not hold the RDS CA, so its login to the "
                "database will fail on AWS. Download the bundle (README, 'Database users') and run again."
            )
        package, package_hash = write_package("users", modules, args.source_dir)
        function = aws.lambda_.Function(
            f"{name}-function",
            # Fixed name: a changed name would replace the Invocation (function_name is ForceNew).
            name=s.function_name,
            description="Creates, narrows and drops the stack's database users (bootstrap)",
            runtime=RUNTIME,
            handler=HANDLER,
            code=pulumi.FileArchive(str(package)),
            source_code_hash=package_hash,
            role=role.arn,
            timeout=FUNCTION_TIMEOUT,
            memory_size=FUNCTION_MEMORY,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vpc_access, secret_access, log_group]),
        )

        auth_kind = "iam" if s.scheme is AuthScheme.IAM_AUTH else "password"
        entries: list[Any] = [
            {
                "name": u.name,
                "privileges": list(u.privileges),
                "database": u.database,
                "auth": auth_kind,
                "secret_arn": self.secret_arns.get(u.name),
            }
            for u in s.all_users
        ]
        # Names, grants and secret ARNs only: Pulumi keeps this input in its state, so never a password.
        # No `triggers` and no `qualifier`, and a fixed function name: those are ForceNew in the provider
        # (terraform-provider-aws internal/service/lambda/invocation.go) while `input` is not under CRUD,
        # so a changed user list is an update of this same Invocation, never a replacement whose delete
        # would run after the new create.
        invocation = aws.lambda_.Invocation(
            f"{name}-bootstrap",
            function_name=function.name,
            input=pulumi.Output.json_dumps({"master_secret_arn": args.master_secret_arn, "users": entries}),
            lifecycle_scope="CRUD",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[function, *secret_values, *args.network_ready, *args.db_ready]
            ),
        )

        self.iam_db_users = [] if with_secrets else [u.name for u in s.all_users]
        self.function_name = function.name
        self.role_arn = role.arn
        self.invocation_result = invocation.result
        self.register_outputs(
            {
                "function_name": self.function_name,
                "role_arn": self.role_arn,
                "secret_arns": self.secret_arns,
            }
        )


def connect_arns(proxy_arn: str, users: Sequence[str]) -> Mapping[str, str]:
    """User → the exact `rds-db:connect` resource an application role needs to log in through the proxy."""
    return {u: db_user_arn(proxy_arn, u) for u in users}
