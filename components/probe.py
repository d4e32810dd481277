"""ProbeFunction: a Lambda in the VPC that connects through the proxy and reports which connection it got."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.iam import db_connect_policy, secret_read_policy
from components.lambda_package import LAMBDA_SRC, RUNTIME, write_package
from components.roles import lambda_vpc_role
from components.users import Login

HANDLER = "lambda_function.lambda_handler"
MODULES = ("lambda_function.py",)


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """The probe's section of the stack config."""

    function_name: str
    db_user: str
    """The database user the probe connects as (probeUser, never the master user)."""
    timeout: int
    memory_size: int
    log_retention_days: int

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True, kw_only=True)
class ProbeFunctionArgs:
    """Where the probe runs, what it connects to (never with a password), and its own section."""

    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    proxy_endpoint: pulumi.Input[str]
    proxy_arn: pulumi.Input[str]
    db_name: str
    db_port: int
    logins: Mapping[str, Login]
    """How to log in as the probe user and as each dbUsers entry (an event may name one)."""
    settings: ProbeSettings
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the function's log group."""
    source_dir: Path = field(default=LAMBDA_SRC)
    proxy_reader_endpoint: pulumi.Input[str] | None = None
    """The proxy's READ_ONLY endpoint, when there is one (`{"endpoint": "reader"}` events connect to it)."""


class ProbeFunction(pulumi.ComponentResource):
    """Python Lambda in the private subnets that runs `SELECT 1, CONNECTION_ID()` through the proxy."""

    function_name: pulumi.Output[str]
    """Name to invoke (`aws lambda invoke --function-name …`)."""
    role_arn: pulumi.Output[str]
    """The function's execution role."""

    def __init__(
        self, name: str, args: ProbeFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rdsproxy:index:ProbeFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings

        role, vpc_access = lambda_vpc_role(
            name, "Execution role of the RDS Proxy probe Lambda", args.proxy_arn, child
        )
        ready: list[pulumi.Resource] = [vpc_access]
        # The probe user first (the grant the probe had before other users existed), then the others.
        iam_users = [
            u for u, login in sorted(args.logins.items(), key=lambda i: i[0] != s.db_user) if login.iam
        ]
        if iam_users:
            ready.append(
                aws.iam.RolePolicy(
                    f"{name}-db-connect",
                    role=role.id,
                    policy=pulumi.Output.json_dumps(
                        pulumi.Output.from_input(args.proxy_arn).apply(
                            lambda arn: db_connect_policy(arn, iam_users)
                        )
                    ),
                    opts=child,
                )
            )
        password_logins = [login for _, login in sorted(args.logins.items()) if login.secret_arn is not None]
        if password_logins:
            # Password users' secrets are read at run time, never put in the environment.
            ready.append(
                aws.iam.RolePolicy(
                    f"{name}-secret-access",
                    role=role.id,
                    policy=pulumi.Output.json_dumps(
                        pulumi.Output.all(
                            pulumi.Output.all(*[login.secret_arn for login in password_logins]),
                            pulumi.Output.all(*[login.kms_key_arn for login in password_logins]),
                        ).apply(lambda a: secret_read_policy(a[0], a[1]))
                    ),
                    opts=child,
                )
            )
        # Created before the function so Lambda doesn't auto-create a group that never expires.
        ready.append(
            aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=s.log_group_name,
                retention_in_days=s.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
        )

        package, package_hash = write_package("probe", MODULES, args.source_dir)
        own = args.logins[s.db_user]
        # The dbUsers entries an event may name, and the probe user itself when it logs in with a password:
        # the probe reads that password from its secret (an entry for DB_USER wins over DB_AUTH).
        others = {u: login for u, login in sorted(args.logins.items()) if u != s.db_user or not login.iam}
        environment: dict[str, pulumi.Input[str]] = {
            "PROXY_ENDPOINT": args.proxy_endpoint,
            "DB_PORT": str(args.db_port),
            "DB_USER": s.db_user,
            "DB_NAME": args.db_name,
            "DB_AUTH": "iam" if own.iam else "password",
            # User → how to log in: names and secret ARNs only, no secret value.
            "DB_USERS": pulumi.Output.all(*[login.secret_arn for login in others.values()]).apply(
                lambda arns: json.dumps(
                    {
                        u: {"auth": "iam" if login.iam else "password", "secret_arn": arn}
                        for (u, login), arn in zip(others.items(), arns, strict=True)
                    },
                    sort_keys=True,
                )
            ),
        }
        if args.proxy_reader_endpoint is not None:
            environment["PROXY_READER_ENDPOINT"] = args.proxy_reader_endpoint
        function = aws.lambda_.Function(
            f"{name}-function",
            name=s.function_name,
            description="Connects through RDS Proxy and reports CONNECTION_ID()",
            runtime=RUNTIME,
            handler=HANDLER,
            code=pulumi.FileArchive(str(package)),
            source_code_hash=package_hash,
            role=role.arn,
            timeout=s.timeout,
            memory_size=s.memory_size,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )

        self.function_name = function.name
        self.role_arn = role.arn
        self.register_outputs({"function_name": self.function_name, "role_arn": self.role_arn})
