"""ProbeFunction: a Lambda in the VPC that connects through the proxy and reports which connection it got."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pymysql

from components.credentials import arn_part, assume_role_policy

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"
BUILD_DIR = ROOT / "build"
RUNTIME = "python3.12"
HANDLER = "lambda_function.lambda_handler"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _package_files(source_dir: Path) -> list[tuple[str, Path]]:
    """(path in zip, file on disk): the handler's modules at the root, pymysql beside them.

    pymysql is pure Python, so the copy from this venv (pinned in requirements.txt) runs on any Lambda
    architecture. boto3 is already in the Lambda runtime and is not shipped.
    """
    files = [(p.name, p) for p in source_dir.glob("*.py")]
    pymysql_dir = Path(pymysql.__file__).parent
    files += [
        (f"pymysql/{p.relative_to(pymysql_dir).as_posix()}", p)
        for p in pymysql_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    return sorted(files)


def build_package(source_dir: Path = LAMBDA_SRC) -> bytes:
    """The Lambda zip, byte-for-byte reproducible: sorted entries, fixed timestamps and modes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in _package_files(source_dir):
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def write_package(source_dir: Path = LAMBDA_SRC, build_dir: Path = BUILD_DIR) -> tuple[Path, str]:
    """Write the zip under build/ (named by content) and return it with its base64 SHA-256."""
    data = build_package(source_dir)
    digest = hashlib.sha256(data).digest()
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"probe-{digest.hex()[:16]}.zip"
    if not path.exists():
        path.write_bytes(data)
    return path, base64.b64encode(digest).decode()


def db_connect_policy(proxy_arn: str, db_user: str) -> dict[str, Any]:
    """rds-db:connect as one user through one proxy; the dbuser ARN is built from the proxy's ARN."""
    partition, region, account = arn_part(proxy_arn, 1), arn_part(proxy_arn, 3), arn_part(proxy_arn, 4)
    proxy_id = proxy_arn.rsplit(":", 1)[1]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectThroughProxy",
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:{partition}:rds-db:{region}:{account}:dbuser:{proxy_id}/{db_user}",
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class ProbeFunctionArgs:
    """Where the probe runs, what it connects to, and how it authenticates (never with a password)."""

    function_name: str
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    proxy_endpoint: pulumi.Input[str]
    proxy_arn: pulumi.Input[str]
    db_user: str
    db_name: str
    iam_auth_required: bool
    db_port: int = 3306
    timeout: int = 30
    memory_size: int = 256
    log_retention_days: int = 30
    source_dir: Path = field(default=LAMBDA_SRC)


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

        role = aws.iam.Role(
            f"{name}-role",
            description="Execution role of the RDS Proxy probe Lambda",
            assume_role_policy=pulumi.Output.json_dumps(assume_role_policy("lambda.amazonaws.com")),
            opts=child,
        )
        partition = pulumi.Output.from_input(args.proxy_arn).apply(lambda a: arn_part(a, 1))
        vpc_access = aws.iam.RolePolicyAttachment(
            f"{name}-vpc-access",
            role=role.name,
            policy_arn=partition.apply(
                lambda p: f"arn:{p}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
            ),
            opts=child,
        )
        ready: list[pulumi.Resource] = [vpc_access]
        if args.iam_auth_required:
            ready.append(
                aws.iam.RolePolicy(
                    f"{name}-db-connect",
                    role=role.id,
                    policy=pulumi.Output.json_dumps(
                        pulumi.Output.from_input(args.proxy_arn).apply(
                            lambda arn: db_connect_policy(arn, args.db_user)
                        )
                    ),
                    opts=child,
                )
            )
        # Created before the function so Lambda doesn't auto-create a group that never expires.
        ready.append(
            aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=f"/aws/lambda/{args.function_name}",
                retention_in_days=args.log_retention_days,
                opts=child,
            )
        )

        package, package_hash = write_package(args.source_dir)
        environment = {
            "PROXY_ENDPOINT": args.proxy_endpoint,
            "DB_PORT": str(args.db_port),
            "DB_USER": args.db_user,
            "DB_NAME": args.db_name,
        }
        if args.iam_auth_required:
            environment["DB_AUTH"] = "iam"
        function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            description="Connects through RDS Proxy and reports CONNECTION_ID()",
            runtime=RUNTIME,
            handler=HANDLER,
            code=pulumi.FileArchive(str(package)),
            source_code_hash=package_hash,
            role=role.arn,
            timeout=args.timeout,
            memory_size=args.memory_size,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )

        self.function_name = function.name
        self.role_arn = role.arn
        self.register_outputs({"function_name": self.function_name, "role_arn": self.role_arn})
