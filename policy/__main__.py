"""CrossGuard policy pack ``rds-proxy-guardrails``: the rules of the ``rules`` package as Pulumi policies.

Run it with the Pulumi CLI from the repository root::

    pulumi preview --stack dev --diff --policy-pack policy

The CLI starts this file with ``python -m pulumi.policy <engine> .`` from inside ``policy/``
(``runpy.run_path``, so ``__name__ == "__main__"`` and ``policy/`` is ``sys.path[0]``): that is why
``rules`` is imported by its bare name there, and as ``policy.rules`` everywhere else. Only the
``__main__`` branch constructs ``PolicyPack``, whose constructor starts the gRPC server and never
returns; importing this module (tests, tooling) just builds the policy list.

Stack name: the CLI exports ``PULUMI_STACK`` (with ``PULUMI_PROJECT`` and ``PULUMI_DRY_RUN``) to the
policy pack process; the production-only rules compare it with their ``productionStacks`` setting
(default ``["prod"]``). Override it with a policy pack config file, e.g.
``pulumi preview --policy-pack policy --policy-pack-config policy-config.json`` with
``{"rds-multi-az-prod": {"productionStacks": ["prod", "prod-eu"]}}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import serialize_properties

try:
    from policy import rules  # imported from the repository root (tests, offline plan)
except ImportError:  # run by the Pulumi CLI: policy/ itself is on sys.path
    import rules  # type: ignore[no-redef]

PACK_NAME = "rds-proxy-guardrails"
PACK_DESCRIPTION = (
    "Guardrails for the RDS Proxy stack, named after the AWS Security Hub controls they mirror."
)
FRAMEWORK = "AWS Foundational Security Best Practices"


def current_stack() -> str | None:
    """Stack name the Pulumi CLI passed to this policy pack (``PULUMI_STACK``), if any."""
    return os.environ.get("PULUMI_STACK") or None


def plain_props(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The resource inputs without pulumi_policy's unknown-checking proxies.

    ``args.props`` raises ``UnknownValueError`` on access to a value that isn't known during preview,
    which would make pulumi_policy skip the whole policy for that resource. Unwrapping keeps the
    engine's unknown sentinels as plain strings; ``rules`` ignores them field by field.
    """
    try:
        plain = serialize_properties(props)
    except TypeError:  # a value pulumi_policy can't serialise: fall back to the raw dict
        target = props.get("__target", props)
        return target if isinstance(target, Mapping) else {}
    return plain if isinstance(plain, Mapping) else {}


def make_validator(rule: rules.Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """A pulumi_policy resource validation that runs ``rule`` and reports each message."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        ctx = rules.RuleContext(stack=current_stack(), config=dict(args.get_config() or {}))
        if rule.production_only and not ctx.is_production:
            args.not_applicable(
                f"stack {ctx.stack!r} is not a production stack {list(ctx.production_stacks)}"
            )
        for message in rule.run(args.resource_type, plain_props(args.props), ctx):
            report_violation(message, None)

    validate.__name__ = f"validate_{rule.name.replace('-', '_')}"
    return validate


def build_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=rule.name,
        description=f"{rule.id}: {rule.description}",
        validate=make_validator(rule),
        config_schema=PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config_schema.items()})
        if rule.config_schema
        else None,
        display_name=f"{rule.id} {rule.name}",
        severity=Severity(rule.severity),
        framework=PolicyComplianceFramework(name=FRAMEWORK, reference=rule.id)
        if not rule.id.startswith("Custom.")
        else None,
        tags=["aws", rule.id.split(".", 1)[0].lower()],
        remediation_steps=rule.remediation or None,
        url=rule.url or None,
    )


def make_stack_validator(rule: rules.StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """A pulumi_policy stack validation that runs ``rule`` over every resource of the stack."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        seen = [
            rules.StackResource(
                type=r.resource_type,
                name=r.name,
                urn=r.urn,
                id=None,  # the engine gives stack policies outputs without ids: relate by dependencies
                inputs=rules.base.plain(plain_props(r.props)),
                dependencies=frozenset(
                    [d.urn for d in r.dependencies]
                    + [d.urn for deps in r.property_dependencies.values() for d in deps]
                ),
            )
            for r in args.resources
        ]
        ctx = rules.RuleContext(stack=current_stack(), config=dict(args.get_config() or {}))
        for found, message in rule.run(seen, ctx):
            report_violation(message, found.urn)

    validate.__name__ = f"validate_{rule.name.replace('-', '_')}"
    return validate


def build_stack_policy(rule: rules.StackRule) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=rule.name,
        description=f"{rule.id}: {rule.description}",
        validate=make_stack_validator(rule),
        display_name=f"{rule.id} {rule.name}",
        severity=Severity(rule.severity),
        framework=PolicyComplianceFramework(name=FRAMEWORK, reference=rule.id),
        tags=["aws", rule.id.split(".", 1)[0].lower()],
        remediation_steps=rule.remediation or None,
        url=rule.url or None,
    )


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """One ResourceValidationPolicy per rule, in ``rules.RULES`` order, then one StackValidationPolicy per
    ``rules.STACK_RULES`` entry."""
    return [build_policy(rule) for rule in rules.RULES] + [build_stack_policy(r) for r in rules.STACK_RULES]


def pack_arguments() -> dict[str, Any]:
    """Keyword arguments of the PolicyPack (separate so tests can check them without serving)."""
    return {
        "name": PACK_NAME,
        "description": PACK_DESCRIPTION,
        "enforcement_level": EnforcementLevel.MANDATORY,
        "policies": build_policies(),
    }


if __name__ == "__main__":
    PolicyPack(**pack_arguments())  # serves gRPC until the CLI stops it
