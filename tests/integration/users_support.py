"""Support for the users bootstrap's real-server tests and bench: moto's Secrets Manager, a caller.

Kept apart from conftest.py so the tests and bench/bench_users.py share it.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.integration.mariadb_server import HOST, MariaDBServer, free_port

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

import users_function  # noqa: E402  (lives in lambda_src/, zipped at the root of the Lambda)

REGION = "us-east-1"
MASTER_USER = "bootstrap_admin"
MASTER_PASSWORD = "master-Pw-7c1e9a"
APP_DB = "testdb"
STATE_SCHEMA = users_function.STATE_SCHEMA
USERS_ENV_VARS = ("DB_HOST", "DB_PORT", "DB_CA_BUNDLE")


class LocalSecrets:
    """moto in server mode on 127.0.0.1 (a free port), holding the secrets the function reads."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self.server.start()
        self.url = f"http://{HOST}:{self.port}"
        self.client = boto3.session.Session().client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.passwords: list[str] = []

    def env(self) -> dict[str, str]:
        """What makes ``boto3.client("secretsmanager")`` (the function's default way) reach moto."""
        return {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def put(self, secret_name: str, value: dict[str, Any]) -> str:
        """Create or overwrite a secret; its ARN."""
        if isinstance(value.get("password"), str):
            self.passwords.append(value["password"])
        body = json.dumps(value)
        try:
            arn = self.client.create_secret(Name=secret_name, SecretString=body)["ARN"]
        except self.client.exceptions.ResourceExistsException:
            arn = self.client.put_secret_value(SecretId=secret_name, SecretString=body)["ARN"]
        return str(arn)

    def user_secret(self, user: str, password: str, port: int, dbname: str = APP_DB) -> str:
        return self.put(
            f"users/{user}",
            {
                "username": user,
                "password": password,
                "engine": "mysql",
                "host": HOST,
                "port": port,
                "dbname": dbname,
            },
        )

    def stop(self) -> None:
        self.server.stop()


def prepare_master(server: MariaDBServer, secrets: LocalSecrets) -> str:
    """A master user like RDS's (not root: it logs in over TLS), the app database; master ARN."""
    server.execute(f"CREATE DATABASE IF NOT EXISTS `{APP_DB}`")
    server.execute(
        f"CREATE OR REPLACE USER '{MASTER_USER}'@'%%' IDENTIFIED BY %s REQUIRE SSL", (MASTER_PASSWORD,)
    )
    server.execute(f"GRANT ALL ON *.* TO '{MASTER_USER}'@'%' WITH GRANT OPTION")
    return secrets.user_secret(MASTER_USER, MASTER_PASSWORD, server.port, dbname="")


def reset_bootstrap_state(server: MariaDBServer) -> None:
    """Drop every user the bootstrap manages and its state schema (a fresh database)."""
    exists = server.execute(
        "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'managed_users'",
        (STATE_SCHEMA,),
    )
    if exists:
        for (name,) in server.execute(f"SELECT name FROM `{STATE_SCHEMA}`.managed_users"):
            server.execute("DROP USER IF EXISTS %s@'%%'", (name,))
    server.execute(f"DROP DATABASE IF EXISTS `{STATE_SCHEMA}`")


def users_env(server: MariaDBServer, secrets: LocalSecrets) -> dict[str, str]:
    env = {"DB_HOST": HOST, "DB_PORT": str(server.port), "DB_CA_BUNDLE": server.ca_path}
    env.update(secrets.env())
    return env
