"""Shared fixtures: run the real program under recording mocks with the config the CLI would give it."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from plan.config import load_stack_config, referenced_stacks
from plan.engine import ProgramRun, SecretValue, run_program


@functools.cache
def _run(stack: str, overrides: tuple[str, ...]) -> ProgramRun:
    config = load_stack_config(stack, overrides)
    # A DR standby's StackReference reads the primary's plan (its stack file as committed), run first.
    references = referenced_stacks(config, lambda other: _run(other, ()))
    return run_program(stack, config, stack_references=references)


def deploy(stack: str = "dev", **config: Any) -> ProgramRun:
    """The program's declarations for `stack` with `--config key=value` overrides (values as the CLI passes them)."""
    overrides = tuple(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(config.items()))
    return _run(stack, overrides)


def ok(stack: str = "dev", **config: Any) -> ProgramRun:
    run = deploy(stack, **config)
    if run.error is not None:
        raise AssertionError(f"program failed: {run.error}") from run.error
    return run


@pytest.fixture(params=["dev", "prod"])
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The program run once per stack file."""
    return ok(request.param)


def policy_doc(resource_inputs: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    value = resource_inputs[key]
    return json.loads(value) if isinstance(value, str) else value


def reveal(value: Any) -> Any:
    """The plain value behind a SecretValue (for assertions only)."""
    return value.value if isinstance(value, SecretValue) else value
