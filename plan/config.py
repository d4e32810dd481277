"""Stack config as the Pulumi CLI assembles and checks it: Pulumi.yaml defaults, Pulumi.<stack>.yaml, overrides.

The CLI reads both files with Go's gopkg.in/yaml.v3 (pulumi/pulumi sdk/go/common/encoding/marshal.go), so
YAML 1.2: `yes`/`on` are strings, not booleans. Here ruamel.yaml parses the files (YAML 1.2) and each
plain scalar is resolved the way yaml.v3 resolves it (resolve.go: `true/True/TRUE`, `null/~/`, ints by
Go's strconv.ParseInt(s, 0, 64) after dropping `_`, so `0x1f`, `0o17` and the YAML 1.1 octal `017`; floats;
timestamps stay strings when decoded into `any`).

A value then reaches the program as the CLI turns it into a config string
(sdk/go/common/resource/config/object.go, `object.MarshalString`): strings as they are; bool, int64 and
float64 through Go's `json.Marshal`, so an unquoted `8.0` becomes "8" and `3.0` becomes "3"; lists and
maps as compact JSON ("object" values). The stack file is first decoded into `any` and re-encoded
(sdk/go/common/workspace/loaders.go, `LoadProjectStackBytes`), which does not change these results.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from plan.engine import ROOT


class StackConfigError(Exception):
    """The stack or an override can't be read (no such stack file, broken YAML, malformed override)."""


class ConfigTypeError(StackConfigError):
    """The CLI's own check of a value against the type Pulumi.yaml declares for it failed."""


@dataclass(frozen=True)
class ConfigValue:
    """One config value as the CLI holds it (`config.Value`): its text and whether it is JSON."""

    text: str
    is_object: bool = False


# --- YAML as gopkg.in/yaml.v3 decodes it into `any` ---------------------------------------------------

_GO_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")  # yaml.v3 yamlStyleFloat
_SPECIAL: Mapping[str, Any] = {
    **{k: True for k in ("true", "True", "TRUE")},
    **{k: False for k in ("false", "False", "FALSE")},
    **{k: None for k in ("", "~", "null", "Null", "NULL")},
    **{k: math.nan for k in (".nan", ".NaN", ".NAN")},
    **{k: math.inf for k in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{k: -math.inf for k in ("-.inf", "-.Inf", "-.INF")},
}
_INT64 = (-(2**63), 2**63 - 1)


def _go_parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64), falling back to ParseUint: base prefixes and a leading-0 octal."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text[1:] if text[:1] == "+" else text)
    if not digits:
        return None
    lowered = digits.lower()
    try:
        if lowered.startswith(("0x", "0o", "0b")):
            value = int(digits[2:], {"x": 16, "o": 8, "b": 2}[lowered[1]]) if len(digits) > 2 else None
        elif len(digits) > 1 and digits[0] == "0":
            value = int(digits[1:], 8)
        else:
            value = int(digits, 10) if digits.isdigit() else None
    except ValueError:
        return None
    if value is None:
        return None
    value *= sign
    if _INT64[0] <= value <= _INT64[1] or (sign > 0 and value < 2**64):
        return value
    return None


def _resolve_plain(text: str) -> Any:
    """A plain (unquoted) scalar as yaml.v3's resolve() reads it, decoded into `any`."""
    if text in _SPECIAL:
        return _SPECIAL[text]
    head = text[:1]
    if head == ".":
        try:
            return float(text)
        except ValueError:
            return text
    if head.isdigit() or head in "+-":
        plain = text.replace("_", "")
        as_int = _go_parse_int(plain)
        if as_int is not None:
            return as_int
        if _GO_FLOAT.match(plain):
            return float(plain)
    return text  # timestamps included: yaml.v3 hands them to `any` as strings


def _go_value(node: Node) -> Any:
    if isinstance(node, MappingNode):
        return {str(_go_value(k)): _go_value(v) for k, v in node.value}
    if isinstance(node, SequenceNode):
        return [_go_value(v) for v in node.value]
    assert isinstance(node, ScalarNode)
    if node.style is None:
        return _resolve_plain(node.value)
    return node.value  # quoted or block scalars are strings


def _load(path: Path) -> tuple[Any, Node | None]:
    """The file decoded as yaml.v3 would, and its node tree (for line numbers); errors name file and line."""
    try:
        node = YAML(typ="safe", pure=True).compose(path.read_text())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise StackConfigError(f"{path.name}: {where}: {problem}") from None
    except YAMLError as exc:
        raise StackConfigError(f"{path.name}: {exc}") from None
    return (None, None) if node is None else (_go_value(node), node)


def _config_section(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a project or stack file; anything but a mapping is an error naming the line."""
    doc, node = _load(path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise StackConfigError(f"{path.name}: line 1: expected a mapping with a `config:` key")
    section = doc.get("config")
    if section is None:
        return {}
    if not isinstance(section, dict):
        assert isinstance(node, MappingNode)
        line = next(v.start_mark.line + 1 for k, v in node.value if k.value == "config")
        raise StackConfigError(f"{path.name}: line {line}: `config:` must be a mapping of key: value")
    return section


# --- values as the CLI hands them to the program -----------------------------------------------------


def go_json(value: Any) -> str:
    """Go's json.Marshal: compact, map keys sorted, <, > and & escaped, floats in Go's shortest form."""
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_float(value: float) -> str:
    """encoding/json's float64 format: %f-style unless the exponent is small or large, then e-style."""
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {value}")  # Go's json.Marshal refuses NaN and Inf
    if value == 0:
        return "0"
    shortest = repr(value)
    if 1e-6 <= abs(value) < 1e21:
        text = format(Decimal(shortest), "f")
        return text[:-2] if text.endswith(".0") else text
    mantissa, _, exponent = shortest.partition("e")
    exp = int(exponent)
    digits = f"{abs(exp):02d}" if exp > 0 else str(abs(exp))  # Go cleans e-07 up to e-7, keeps e+21
    return f"{mantissa.removesuffix('.0')}e{'-' if exp < 0 else '+'}{digits}"


def cli_value(value: Any) -> ConfigValue:
    """A decoded YAML value as the CLI's config.Value (`object.MarshalString`)."""
    if value is None:
        # The CLI warns and treats a top-level null as "" (sdk/go/common/workspace/loaders.go).
        return ConfigValue("")
    if isinstance(value, str):
        return ConfigValue(value)
    if isinstance(value, bool):
        return ConfigValue("true" if value else "false")
    if isinstance(value, int | float):
        return ConfigValue(go_json(value))
    return ConfigValue(go_json(value), is_object=True)


def _default_value(value: Any) -> ConfigValue:
    """A Pulumi.yaml default as pkg/workspace/config.go `createConfigValue` makes it (fmt %v for primitives)."""
    if isinstance(value, bool):
        return ConfigValue("true" if value else "false")
    if isinstance(value, str | int):
        return ConfigValue(str(value))
    return ConfigValue(go_json(value), is_object=True)


# --- assembling the stack's config -------------------------------------------------------------------


def _root(root: Path | None) -> Path:
    """The project directory (looked up at call time, so tests can point it at a temporary project)."""
    return root if root is not None else ROOT


def project_name(root: Path | None = None) -> str:
    doc, _ = _load(_root(root) / "Pulumi.yaml")
    return str(doc["name"])


def stacks(root: Path | None = None) -> list[str]:
    """Stacks that have a settings file."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in _root(root).glob("Pulumi.*.yaml"))


def _declarations(root: Path | None) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _config_section(_root(root) / "Pulumi.yaml").items() if isinstance(v, dict)}


def assemble(stack: str, overrides: Iterable[str] = (), root: Path | None = None) -> dict[str, ConfigValue]:
    """Fully-qualified key → the CLI's value: defaults, then the stack file, then `--config` overrides."""
    name = project_name(root)
    declared = _declarations(root)

    def qualify(key: str) -> str:
        return key if ":" in key else f"{name}:{key}"

    values = {qualify(k): _default_value(d["default"]) for k, d in declared.items() if "default" in d}
    stack_file = _root(root) / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise StackConfigError(f"no stack file {stack_file.name}; stacks here: {', '.join(stacks(root))}")
    for key, value in _config_section(stack_file).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[qualify(key)] = ConfigValue("[secret]")  # encrypted with the stack's key
            continue
        try:
            values[qualify(key)] = cli_value(value)
        except ValueError as exc:
            raise StackConfigError(f"{stack_file.name}: {key}: {exc}") from None
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise StackConfigError(f"--config {item!r}: expected key=value, e.g. maxConnectionsPercent=60")
        key = key.strip()
        decl = declared.get(key.removeprefix(f"{name}:"), {}) if qualify(key).startswith(f"{name}:") else {}
        # Like `pulumi config set --path`/--json for structured keys: a JSON list or map stays structured.
        is_object = decl.get("type") in ("array", "object") and text.strip()[:1] in ("[", "{")
        values[qualify(key)] = ConfigValue(text, is_object=is_object)
    return values


def load_stack_config(stack: str, overrides: Iterable[str] = (), root: Path | None = None) -> dict[str, str]:
    """Fully-qualified key → raw string value, as the program would see it under `pulumi up`."""
    return {k: v.text for k, v in assemble(stack, overrides, root).items()}


# --- the CLI's own type check ------------------------------------------------------------------------


def _type_ok(type_name: str, items: Mapping[str, Any] | None, value: Any) -> bool:
    """sdk/go/common/workspace/project.go `ValidateConfigValue`."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        return isinstance(value, str) and _go_atoi(value)
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(_type_ok(str(items.get("type")), items.get("items"), v) for v in value)


def _go_atoi(text: str) -> bool:
    """Go's strconv.Atoi: an optional sign and decimal digits, nothing else (no spaces, no `3.0`, no `_`)."""
    return re.fullmatch(r"[+-]?[0-9]+", text) is not None and -(2**63) <= int(text) <= 2**63 - 1


def _type_name(type_name: str, items: Mapping[str, Any] | None) -> str:
    """project.go `InferFullTypeName`: `array<string>` for a list of strings."""
    if items is not None:
        return f"array<{_type_name(str(items.get('type')), items.get('items'))}>"
    return type_name


def cli_config_error(stack: str, overrides: Iterable[str] = (), root: Path | None = None) -> str | None:
    """What `pulumi up` says before running the program when a value doesn't fit its declared type.

    pulumi/pulumi pkg/workspace/config.go: `mergeConfig` reports keys declared without a default and not
    set ("Stack '%v' is missing configuration value %v"), then `validateStackConfigValue` checks each
    declared key in sorted order and stops at the first mismatch:

        "Stack '%v' with configuration key '%v' must be of type '%v'"

    pkg/cmd/pulumi/operations/up.go wraps it as "validating stack config: %w"; the CLI prints it as
    `error: <message>` (cmdutil.DisplayErrorMessage) and exits 1 (ExitCodeFor: a plain error is
    ExitCodeError). None when every value passes.
    """
    name = project_name(root)
    declared = _declarations(root)
    values = assemble(stack, overrides, root)

    def qualify(key: str) -> str:
        return key if ":" in key else f"{name}:{key}"

    missing = [
        k for k, d in declared.items() if "default" not in d and "value" not in d and qualify(k) not in values
    ]
    missing = [k for k in missing if qualify(k).startswith(f"{name}:")]
    if missing:
        quoted = [f"'{k}'" for k in sorted(missing)]  # formatMissingKeys: 'a', 'b' and 'c'
        keys = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
        plural = "values" if len(missing) > 1 else "value"
        return f"validating stack config: Stack '{stack}' is missing configuration {plural} {keys}"
    for key in sorted(declared):
        decl = declared[key]
        if "type" not in decl or qualify(key) not in values:
            continue
        value = values[qualify(key)]
        if value.text == "[secret]":
            continue  # can't be decrypted offline
        content: Any = value.text
        if value.is_object:
            try:
                content = json.loads(value.text)
            except json.JSONDecodeError:
                content = None
        if not _type_ok(str(decl["type"]), decl.get("items"), content):
            type_name = _type_name(str(decl["type"]), decl.get("items"))
            return (
                f"validating stack config: Stack '{stack}' with configuration key '{key}' "
                f"must be of type '{type_name}'"
            )
    return None
