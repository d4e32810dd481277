"""Guardrail rules for the RDS Proxy stack, as plain Python: one module per AWS service.

One set of checks serves two callers:

* the CrossGuard policy pack in ``policy/__main__.py`` (``pulumi preview --policy-pack policy``),
  which runs with ``policy/`` itself on ``sys.path`` and imports this package as ``rules``;
* the offline plan (``make plan``), which imports it as ``policy.rules`` and calls :func:`evaluate`
  on the resources registered under Pulumi mocks.

That is why nothing in this package imports ``pulumi_policy`` (the plan must not need it) or
``pulumi``, and why its modules import each other only relatively (``from .base import ...``): the
package is loaded under two names, and a relative import resolves under either.

Layout: :mod:`.base` holds what every rule shares (``Rule``, ``Violation``, ``RuleContext``, reading
engine values, :func:`.base.evaluate`); :mod:`.rds`, :mod:`.ec2`, :mod:`.iam`, :mod:`.awslambda` and
:mod:`.cloudwatch` and :mod:`.sns` hold the rules, each ``Rule`` declared right below its check and named after the
AWS Security Hub (Foundational Security Best Practices) control it mirrors (``RDS_2`` is RDS.2);
where our rule is stricter than the control, its description says so. ``RULES`` below lists them in
the order the pack and the plan report them.

Property values are the *inputs* of a resource, keyed by their engine (camelCase) names, exactly as
the engine hands them to a policy pack or as Pulumi mocks see them: numbers may be floats, nested
objects are mappings, IAM policy documents are JSON strings or mappings, secrets may be wrapped in
the engine's secret envelope. A value that isn't known yet (``pulumi preview`` of a new resource,
or ``Unknown``/``Output`` objects under mocks) never produces a violation by itself: the check skips
what it can't see. ``pulumi up`` runs the policy pack again with the final inputs, so an unknown at
preview time is still checked before anything is created or changed.

How a rule learns whether the stack is a production stack
--------------------------------------------------------
Rules marked ``production_only`` (RDS.5, RDS.8) apply only to production stacks. A stack is a
production stack when its name is in the rule's ``productionStacks`` setting (default ``["prod"]``).
Inside the policy pack the stack name comes from the ``PULUMI_STACK`` environment variable: the
Pulumi CLI sets it for Python policy packs (``constructEnv`` in the CLI's analyzer plugin, the same
variable ``pulumi_policy`` reads in ``_configure_runtime_settings``). ``evaluate`` takes it as the
``stack`` argument. If the name is unknown (empty), the stack counts as production: the stricter
reading, so a missing variable can't switch the guardrails off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import base
from .awslambda import CUSTOM_1, LAMBDA_2, LAMBDA_FUNCTION, SUPPORTED_PYTHON_RUNTIMES, secret_like_env_name
from .base import (
    DEFAULT_PRODUCTION_STACKS,
    UNKNOWN_SENTINELS,
    Check,
    Rule,
    RuleContext,
    StackResource,
    StackRule,
    Violation,
    is_production_stack,
    is_unknown,
)
from .cloudwatch import (
    CLOUDWATCH_15,
    CLOUDWATCH_16,
    CUSTOM_3,
    DEFAULT_MIN_LOG_RETENTION_DAYS,
    LOG_GROUP,
    METRIC_ALARM,
)
from .ec2 import (
    DEFAULT_SECURITY_GROUP,
    EC2_2,
    EC2_6,
    EC2_18,
    FLOW_LOG,
    SECURITY_GROUP,
    SECURITY_GROUP_INGRESS_RULE,
    SECURITY_GROUP_RULE,
    VPC,
)
from .iam import IAM_21, IAM_GROUP_POLICY, IAM_POLICY, IAM_ROLE, IAM_ROLE_POLICY, IAM_USER_POLICY
from .rds import (
    MIN_BACKUP_RETENTION_DAYS,
    RDS_2,
    RDS_3,
    RDS_5,
    RDS_6,
    RDS_8,
    RDS_9,
    RDS_11,
    RDS_43,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    RDS_PROXY,
)
from .secretsmanager import CUSTOM_2, SECRET
from .sns import AWS_MANAGED_SNS_KEY, SNS_1, SNS_TOPIC

__all__ = [
    "AWS_MANAGED_SNS_KEY",
    "DEFAULT_MIN_LOG_RETENTION_DAYS",
    "DEFAULT_PRODUCTION_STACKS",
    "DEFAULT_SECURITY_GROUP",
    "FLOW_LOG",
    "IAM_GROUP_POLICY",
    "IAM_POLICY",
    "IAM_ROLE",
    "IAM_ROLE_POLICY",
    "IAM_USER_POLICY",
    "LAMBDA_FUNCTION",
    "LOG_GROUP",
    "METRIC_ALARM",
    "MIN_BACKUP_RETENTION_DAYS",
    "RDS_CLUSTER",
    "RDS_CLUSTER_INSTANCE",
    "RDS_INSTANCE",
    "RDS_PROXY",
    "RULES",
    "SECRET",
    "SECURITY_GROUP",
    "SECURITY_GROUP_INGRESS_RULE",
    "SECURITY_GROUP_RULE",
    "SNS_TOPIC",
    "STACK_RULES",
    "SUPPORTED_PYTHON_RUNTIMES",
    "UNKNOWN_SENTINELS",
    "VPC",
    "Check",
    "Rule",
    "RuleContext",
    "StackResource",
    "StackRule",
    "Violation",
    "evaluate",
    "is_production_stack",
    "is_unknown",
    "rule_by_id",
    "rule_by_name",
    "secret_like_env_name",
]

RULES: list[Rule] = [
    RDS_2,
    RDS_3,
    RDS_11,
    RDS_5,
    RDS_8,
    RDS_43,
    EC2_18,
    EC2_2,
    IAM_21,
    CUSTOM_1,
    LAMBDA_2,
    CLOUDWATCH_16,
    # security hardening (issue 14)
    RDS_6,
    RDS_9,
    CUSTOM_2,
    CUSTOM_3,
    CLOUDWATCH_15,
    SNS_1,
]
"""Every rule of the pack, in the order the pack registers them and the plan reports violations."""

STACK_RULES: list[StackRule] = [EC2_6]
"""Rules over the whole stack (one resource's compliance depends on another's), run after RULES."""


def rule_by_id(rule_id: str) -> Rule:
    for rule in RULES:
        if rule.id == rule_id:
            return rule
    raise KeyError(rule_id)


def rule_by_name(name: str) -> Rule:
    for rule in RULES:
        if rule.name == name:
            return rule
    raise KeyError(name)


def evaluate(
    resources: Iterable[Any],
    *,
    stack: str,
    config: Mapping[str, Mapping[str, Any] | str] | None = None,
    rules: Sequence[Rule] | None = None,
    stack_rules: Sequence[StackRule] | None = None,
) -> list[Violation]:
    """:func:`.base.evaluate` with every rule of ``RULES`` and ``STACK_RULES`` unless narrowed."""
    return base.evaluate(
        resources,
        stack=stack,
        config=config,
        rules=RULES if rules is None else rules,
        stack_rules=STACK_RULES if stack_rules is None else stack_rules,
    )
