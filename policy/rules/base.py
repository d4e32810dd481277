"""What every rule shares: the rule and violation types, reading engine values (secrets, unknowns,
numbers as floats), the production-stack test, and :func:`evaluate`.

Nothing here imports ``pulumi`` or ``pulumi_policy`` (the offline plan must not need them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PRODUCTION_STACKS: tuple[str, ...] = ("prod",)
"""Stack names treated as production unless a rule's ``productionStacks`` setting says otherwise."""


# Engine sentinels for values not known during preview. Copied from pulumi_policy/proxy.py
# (UNKNOWN_*_VALUE) and pulumi/runtime/rpc.py (UNKNOWN); tests/test_policy.py checks they still match.
UNKNOWN_SENTINELS: frozenset[str] = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string (also pulumi.runtime.rpc.UNKNOWN)
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)

# Secret envelope of the Pulumi wire format ({SIG: SECRET_SIG, "value": ...}), see
# pulumi/runtime/rpc.py (_special_sig_key, _special_secret_sig).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

_SECURITY_HUB_DOCS = "https://docs.aws.amazon.com/securityhub/latest/userguide"


@dataclass(frozen=True)
class Violation:
    """One failed rule on one resource. ``rule`` is the rule id (e.g. ``"RDS.2"``)."""

    rule: str
    resource: str
    type: str
    message: str


@dataclass(frozen=True)
class RuleContext:
    """What a check may know besides the resource: the stack and the rule's settings.

    ``config`` holds the rule's settings (policy pack config for this rule, or the ``config``
    argument of :func:`evaluate`); keys are those of the rule's ``config_schema``.
    """

    stack: str | None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def production_stacks(self) -> tuple[str, ...]:
        configured = self.config.get("productionStacks")
        if isinstance(configured, Sequence) and not isinstance(configured, str):
            return tuple(str(s) for s in configured)
        return DEFAULT_PRODUCTION_STACKS

    @property
    def is_production(self) -> bool:
        return is_production_stack(self.stack, self.production_stacks)


Check = Callable[[Mapping[str, Any], RuleContext], list[str]]


@dataclass(frozen=True)
class Rule:
    """A guardrail: Security Hub id, policy name, which resource types it reads, and its check.

    ``check(props, ctx)`` gets the resource's inputs with secrets unwrapped and returns one message
    per problem (empty list: compliant). Use :meth:`run` rather than calling ``check`` directly:
    it applies the type filter, the production gate and the input normalisation.
    """

    id: str
    name: str
    description: str
    resource_types: tuple[str, ...]
    check: Check
    severity: str = "medium"  # low | medium | high | critical (pulumi_policy.Severity values)
    production_only: bool = False
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    remediation: str = ""
    url: str = ""

    def applies_to(self, resource_type: str) -> bool:
        return resource_type in self.resource_types

    def run(self, resource_type: str, props: Mapping[str, Any] | None, ctx: RuleContext) -> list[str]:
        if not self.applies_to(resource_type):
            return []
        if self.production_only and not ctx.is_production:
            return []
        values = plain(props or {})
        if not isinstance(values, Mapping):
            return []
        return self.check(values, ctx)


@dataclass(frozen=True)
class StackResource:
    """One resource as a stack-level check sees it: inputs normalised like a Rule's, and what it waits for
    (the URNs of its dependencies: how a check relates resources when ids aren't known yet)."""

    type: str
    name: str
    urn: str
    id: Any
    inputs: Mapping[str, Any]
    dependencies: frozenset[str]


StackCheck = Callable[[Sequence[StackResource], RuleContext], list[tuple[StackResource, str]]]


@dataclass(frozen=True)
class StackRule:
    """A guardrail that needs the whole stack (e.g. "every VPC has a flow log": two resources).

    The per-resource model can't see another resource, so these run once over every resource: as a
    ``StackValidationPolicy`` in the pack and after the resource rules in :func:`evaluate`. ``check``
    returns (resource, message) pairs; the violation is reported on that resource.
    """

    id: str
    name: str
    description: str
    check: StackCheck
    severity: str = "medium"
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    remediation: str = ""
    url: str = ""

    def run(self, resources: Sequence[StackResource], ctx: RuleContext) -> list[tuple[StackResource, str]]:
        return self.check(resources, ctx)


def stack_resource(resource: Any) -> StackResource | None:
    """A StackResource from a mapping or object with ``type``, ``name``, ``inputs`` and optionally ``urn``,
    ``id`` and ``dependencies`` (URNs); None for entries without a type."""
    type_token = _field(resource, "type", "typ", "resource_type")
    if not isinstance(type_token, str):
        return None
    inputs = _field(resource, "inputs", "props")
    values = plain(inputs) if isinstance(inputs, Mapping) else {}
    deps = _field(resource, "dependencies") or ()
    name = str(_field(resource, "name"))
    return StackResource(
        type=type_token,
        name=name,
        urn=str(_field(resource, "urn") or name),
        id=_field(resource, "id"),
        inputs=values if isinstance(values, Mapping) else {},
        dependencies=frozenset(str(d) for d in deps),
    )


class _UnknownMarker:
    """Stands in for any unknown value after normalisation."""

    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN = _UnknownMarker()


def is_unknown(value: Any) -> bool:
    """True for values not known yet: engine sentinels, mock ``Unknown`` objects, ``Output``s.

    ``None`` is *absent*, not unknown: the provider default applies.
    """
    if isinstance(value, _UnknownMarker):
        return True
    if isinstance(value, str):
        return value in UNKNOWN_SENTINELS
    # pulumi.output.Unknown, pulumi.Output, and anything else that isn't plain data.
    return not (value is None or isinstance(value, (bool, int, float, Mapping, list, tuple)))


def plain(value: Any) -> Any:
    """Plain dict/list copy with secrets unwrapped and every unknown replaced by ``_UNKNOWN``.

    Assets and archives (engine envelopes, or pulumi.Asset objects) only matter as "some value"
    and are kept as they come.
    """
    if isinstance(value, Mapping):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return plain(value.get("value"))
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if is_unknown(value) and _looks_like_data_placeholder(value):
        return _UNKNOWN
    return value


def _looks_like_data_placeholder(value: Any) -> bool:
    # Assets/archives from pulumi (FileArchive etc.) are not "unknown", they're just opaque.
    cls = type(value).__name__
    return not cls.endswith(("Asset", "Archive"))


def as_bool(value: Any) -> bool | None:
    """True/False, or None when absent or unknown."""
    if value is None or is_unknown(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, (int, float)):
        return bool(value)
    return None


def as_number(value: Any) -> float | None:
    if value is None or is_unknown(value) or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_list(value: Any) -> list[Any]:
    """The elements of a list input; [] when absent, unknown or not a list."""
    if isinstance(value, list):
        return value
    return []


def fmt_num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def is_production_stack(
    stack: str | None, production_stacks: Iterable[str] = DEFAULT_PRODUCTION_STACKS
) -> bool:
    """Whether ``stack`` (short name or ``org/project/stack``) is a production stack.

    An unknown stack name counts as production (fail closed).
    """
    if not stack:
        return True
    short = stack.rsplit("/", 1)[-1]
    return short in set(production_stacks)


PRODUCTION_SCHEMA: Mapping[str, Mapping[str, Any]] = {
    "productionStacks": {
        "type": "array",
        "items": {"type": "string"},
        "default": list(DEFAULT_PRODUCTION_STACKS),
        "description": "Stack names this rule treats as production (it applies to no other stack).",
    }
}


def security_hub_url(service: str, number: int) -> str:
    return f"{_SECURITY_HUB_DOCS}/{service}-controls.html#{service}-{number}"


def _field(resource: Any, *names: str) -> Any:
    for name in names:
        if isinstance(resource, Mapping):
            if name in resource:
                return resource[name]
        elif hasattr(resource, name):
            return getattr(resource, name)
    return None


def evaluate(
    resources: Iterable[Any],
    *,
    stack: str,
    config: Mapping[str, Mapping[str, Any] | str] | None = None,
    rules: Sequence[Rule],
    stack_rules: Sequence[StackRule] = (),
) -> list[Violation]:
    """Run every rule of ``rules`` on every resource; return the violations in resource order.

    ``resources``: mappings or objects with ``type`` (Pulumi type token; ``typ`` as on
    ``pulumi.runtime.MockResourceArgs`` is accepted too), ``name`` and ``inputs`` (camelCase
    property dict; ``props`` is accepted too).
    ``stack``: the stack name, which decides the production-only rules.
    ``config``: per-rule settings keyed by rule name (or id), the same shape as a policy pack config
    file without ``enforcementLevel``, e.g. ``{"rds-multi-az-prod": {"productionStacks": ["prod"]}}``.
    A rule whose setting has ``"enforcementLevel": "disabled"`` is skipped.
    """
    config = config or {}
    violations: list[Violation] = []
    active = list(rules)
    resources = list(resources)
    for resource in resources:
        type_token = _field(resource, "type", "typ", "resource_type")
        name = _field(resource, "name")
        inputs = _field(resource, "inputs", "props")
        if not isinstance(type_token, str):
            continue
        for rule in active:
            settings = config.get(rule.name, config.get(rule.id, {}))
            if isinstance(settings, str):  # shorthand: "rule-name": "disabled"
                settings = {"enforcementLevel": settings}
            if settings.get("enforcementLevel") == "disabled":
                continue
            ctx = RuleContext(stack=stack, config=settings)
            for message in rule.run(type_token, inputs if isinstance(inputs, Mapping) else {}, ctx):
                violations.append(
                    Violation(rule=rule.id, resource=str(name), type=type_token, message=message)
                )
    seen = [r for r in (stack_resource(res) for res in resources) if r is not None]
    for stack_rule in stack_rules:
        settings = _settings(config, stack_rule.name, stack_rule.id)
        if settings.get("enforcementLevel") == "disabled":
            continue
        for found, message in stack_rule.run(seen, RuleContext(stack=stack, config=settings)):
            violations.append(
                Violation(rule=stack_rule.id, resource=found.name, type=found.type, message=message)
            )
    return violations


def _settings(config: Mapping[str, Mapping[str, Any] | str], name: str, rule_id: str) -> Mapping[str, Any]:
    settings = config.get(name, config.get(rule_id, {}))
    return {"enforcementLevel": settings} if isinstance(settings, str) else settings
