"""Credentials: generate the master password and store it in Secrets Manager. Nothing else: who may read the
secret is decided by the resource that uses it (the proxy builds its own role from its auth entries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.proxy import ClientPasswordAuthType, IamAuth, ProxyAuth

# RDS rejects "/", "@", '"' and spaces in master passwords; every other printable special is fine.
PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?.,^~"
PASSWORD_LENGTH = 32


def generated_password(name: str, opts: pulumi.ResourceOptions) -> random.RandomPassword:
    """A password RDS accepts: 32 characters, every class at least twice, no `/ @ "` or space. Every user
    of the stack (the master, each `dbUsers` entry) gets one of these."""
    return random.RandomPassword(
        name,
        length=PASSWORD_LENGTH,
        special=True,
        override_special=PASSWORD_SPECIALS,
        min_lower=2,
        min_upper=2,
        min_numeric=2,
        min_special=2,
        opts=opts,
    )


@dataclass(frozen=True, kw_only=True)
class CredentialsSettings:
    """The master user's section of the stack config."""

    username: str
    """Master user name (`dbUsername`)."""
    protect: bool
    """Mark the secret `protect=True` (with `dbDeletionProtection`): Pulumi refuses to delete it."""
    client_iam_auth: IamAuth
    """How clients of the proxy log in as the master user (`iamAuth`)."""
    client_password_auth_type: ClientPasswordAuthType = ClientPasswordAuthType.MYSQL_CACHING_SHA2_PASSWORD
    rotated: bool = False
    """Secrets Manager rotates the password (`secretRotationDays`): Pulumi must never write its value back."""


@dataclass(frozen=True, kw_only=True)
class CredentialsArgs:
    """Whose credentials, and how the secret is kept."""

    settings: CredentialsSettings
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed KMS key for the secret; None uses the AWS-managed key."""
    replicas: Sequence[aws.secretsmanager.SecretReplicaArgs] = ()
    """Regions (and their keys) to replicate the secret to (`DrReplication.secret_replicas`). Adding them to a
    deployed secret is an in-place update: terraform-provider-aws `resourceSecretUpdate` calls
    ReplicateSecretToRegions; only `name`/`name_prefix` force a new secret."""


class Credentials(pulumi.ComponentResource):
    """The master user's generated password, stored as a Secrets Manager secret."""

    username: str
    """Master user name (plain: it is not a secret)."""
    password: pulumi.Output[str]
    """Generated master password, a Pulumi secret."""
    secret_arn: pulumi.Output[str]
    """ARN of the secret holding {"username", "password"}."""
    kms_key_arn: pulumi.Input[str] | None
    """The secret's customer-managed key, if any."""
    auths: list[ProxyAuth]
    """The proxy's auth entry for the master user (the proxy builds its role from it)."""

    def __init__(self, name: str, args: CredentialsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Credentials", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        db = args.settings

        password = generated_password(f"{name}-master-password", child)
        secret = aws.secretsmanager.Secret(
            f"{name}-master-secret",
            description="Master credentials of the RDS database, read by RDS Proxy",
            kms_key_id=args.kms_key_arn,
            replicas=list(args.replicas) or None,
            opts=pulumi.ResourceOptions(parent=self, protect=db.protect),
        )
        self._name = name
        self._secret = secret
        self._settings = db

        self.username = db.username
        self.password = password.result
        self.secret_arn = secret.arn
        self.kms_key_arn = args.kms_key_arn
        self.auths = [
            ProxyAuth(
                secret_arn=secret.arn,
                kms_key_arn=args.kms_key_arn,
                client_iam_auth=db.client_iam_auth,
                client_password_auth_type=db.client_password_auth_type,
                description="Master credentials",
            )
        ]
        self.register_outputs({"secret_arn": self.secret_arn})

    def store(self, *, host: pulumi.Input[str], port: int, db_name: str, engine: str) -> None:
        """Write the secret's value, once the database it opens is declared.

        The shape is what AWS's rotation functions read (`engine`, `host`, `port`, `dbname`, `username`,
        `password`; Secrets Manager user guide, "JSON structure of Amazon RDS secrets"); RDS Proxy reads
        only `username` and `password`. The value depends on the database's address, and the database on the
        password, hence a second step rather than an argument.

        With rotation on, `ignore_changes=["secret_string"]`: after a rotation the secret's current version
        holds a password Pulumi never saw, and any change of this input would make Pulumi write a new version
        with the old password, which the proxy would then present to a database that no longer accepts it.
        """
        aws.secretsmanager.SecretVersion(
            f"{self._name}-master-secret-value",
            secret_id=self._secret.id,
            # Secret because the password (RandomPassword.result) is; the test suite checks it stays so.
            secret_string=pulumi.Output.json_dumps(
                {
                    "engine": engine,
                    "host": host,
                    "port": port,
                    "dbname": db_name,
                    "username": self._settings.username,
                    "password": self.password,
                }
            ),
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["secret_string"] if self._settings.rotated else None
            ),
        )
