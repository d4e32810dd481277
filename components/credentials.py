"""Credentials: a generated master password, the Secrets Manager secret holding it, and the proxy's role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# RDS rejects "/", "@", '"' and spaces in master passwords; every other printable special is fine.
PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?.,^~"
PASSWORD_LENGTH = 32


def assume_role_policy(service: str) -> dict[str, Any]:
    """Trust policy letting one AWS service assume a role."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def arn_part(arn: str, index: int) -> str:
    """Field `index` of an ARN (`arn:partition:service:region:account:resource…`)."""
    return arn.split(":", 6)[index]


def secret_read_policy(secret_arns: list[str], kms_key_arn: str | None) -> dict[str, Any]:
    """What RDS Proxy needs to read its secrets: those exact ARNs, and the key only via Secrets Manager."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadProxySecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": secret_arns,
        }
    ]
    if kms_key_arn:
        regions = sorted({arn_part(a, 3) for a in secret_arns})
        statements.append(
            {
                "Sid": "DecryptProxySecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": [f"secretsmanager.{r}.amazonaws.com" for r in regions]}
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


@dataclass(frozen=True, kw_only=True)
class CredentialsArgs:
    """Who the master user is, and how the secret is kept."""

    username: str
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed KMS key for the secret; None uses the AWS-managed key."""
    protect: bool = False
    """Mark the secret `protect=True` (prod): Pulumi refuses to delete it."""


class Credentials(pulumi.ComponentResource):
    """Master credentials in Secrets Manager, and an IAM role that lets RDS Proxy read exactly that secret."""

    username: str
    """Master user name (plain: it is not a secret)."""
    password: pulumi.Output[str]
    """Generated master password, a Pulumi secret."""
    secret_arn: pulumi.Output[str]
    """ARN of the secret holding {"username", "password"}."""
    proxy_role_arn: pulumi.Output[str]
    """Role for RDS Proxy; resolves only once its policy is attached."""

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Credentials", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        password = random.RandomPassword(
            f"{name}-master-password",
            length=PASSWORD_LENGTH,
            special=True,
            override_special=PASSWORD_SPECIALS,
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            min_special=2,
            opts=child,
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-master-secret",
            description="Master credentials of the RDS database, read by RDS Proxy",
            kms_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-master-secret-value",
            secret_id=secret.id,
            # Secret because the password (RandomPassword.result) is; the test suite checks it stays so.
            secret_string=pulumi.Output.json_dumps({"username": args.username, "password": password.result}),
            opts=child,
        )

        role = aws.iam.Role(
            f"{name}-proxy-role",
            description="Lets RDS Proxy read the database credentials secret",
            assume_role_policy=pulumi.Output.json_dumps(assume_role_policy("rds.amazonaws.com")),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-proxy-secret-access",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(secret.arn, args.kms_key_arn).apply(
                    lambda a: secret_read_policy([a[0]], a[1])
                )
            ),
            opts=child,
        )

        self.username = args.username
        self.password = password.result
        self.secret_arn = secret.arn
        # The proxy takes this ARN as input, so it waits for the policy too (no startup without access).
        self.proxy_role_arn = pulumi.Output.all(role.arn, policy.id).apply(lambda a: a[0])
        self.register_outputs({"secret_arn": self.secret_arn, "proxy_role_arn": self.proxy_role_arn})
