"""Stack config as the Pulumi CLI assembles it: Pulumi.yaml defaults, then Pulumi.<stack>.yaml, then overrides."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from plan.engine import ROOT


class StackConfigError(Exception):
    """The stack or an override can't be read (no such stack file, malformed override)."""


def _as_config_string(value: Any) -> str:
    """How the CLI hands a YAML value to the program: strings as-is, everything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def project_name(root: Path = ROOT) -> str:
    return str(yaml.safe_load((root / "Pulumi.yaml").read_text())["name"])


def stacks(root: Path = ROOT) -> list[str]:
    """Stacks that have a settings file."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_stack_config(stack: str, overrides: Iterable[str] = (), root: Path = ROOT) -> dict[str, str]:
    """Fully-qualified key → raw string value, as the program would see it under `pulumi up`."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    name = project["name"]

    def qualify(key: str) -> str:
        return key if ":" in key else f"{name}:{key}"

    values = {
        qualify(key): _as_config_string(decl["default"])
        for key, decl in (project.get("config") or {}).items()
        if isinstance(decl, dict) and "default" in decl
    }
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise StackConfigError(f"no stack file {stack_file.name}; stacks here: {', '.join(stacks(root))}")
    stack_config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    for key, value in stack_config.items():
        if isinstance(value, dict) and "secure" in value:
            value = "[secret]"  # encrypted with the stack's key; not readable offline
        values[qualify(key)] = _as_config_string(value)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StackConfigError(f"--config {item!r}: expected key=value, e.g. maxConnectionsPercent=60")
        values[qualify(key.strip())] = value
    return values
