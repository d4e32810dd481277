"""Helpers shared by the integration tests: the handler module, a Lambda context, a probe caller."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

import lambda_function  # noqa: E402  (lives in lambda_src/, zipped at the root of the Lambda)

PROBE_ENV_VARS = (
    "PROXY_ENDPOINT",
    "DB_PORT",
    "DB_USER",
    "DB_NAME",
    "DB_AUTH",
    "DB_PASSWORD",
    "DB_CA_BUNDLE",
    "PROBE_CONNECT_TIMEOUT_S",
    "PROBE_QUERY_TIMEOUT_S",
    "PROBE_MAX_ATTEMPTS",
    "PROBE_BACKOFF_BASE_S",
    "PROBE_BACKOFF_CAP_S",
    "PROBE_BUDGET_S",
    "PROXY_READER_ENDPOINT",
    "DB_USERS",
    "PROBE_SECRET_TTL_S",
)


class FakeContext:
    """The bits of the Lambda context object the handler uses."""

    def __init__(self, remaining_ms: float = 30_000.0, request_id: str = "test-request") -> None:
        self.aws_request_id = request_id
        self._deadline_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return int(self._deadline_ms)


class Probe:
    """Calls the handler like Lambda would and keeps what it logged."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []

    def __call__(self, event: Any = None, context: Any = None) -> dict[str, Any]:
        self.capsys.readouterr()
        response = lambda_function.lambda_handler(
            {} if event is None else event, FakeContext() if context is None else context
        )
        out = self.capsys.readouterr().out
        self.raw.append(out)
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected exactly one log line per invocation, got {lines!r}"
        self.logs.append(json.loads(lines[0]))
        assert set(response) == {"statusCode", "body"}
        response = dict(response)
        response["body"] = json.loads(response["body"])
        return response

    @property
    def last_log(self) -> dict[str, Any]:
        return self.logs[-1]
