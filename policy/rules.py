"""Guardrail rules for the RDS Proxy stack, as plain Python.

One set of checks serves two callers:

* the CrossGuard policy pack in ``policy/__main__.py`` (``pulumi preview --policy-pack policy``),
  which runs with ``policy/`` itself on ``sys.path`` and imports this file as ``rules``;
* the offline plan (``make plan``), which imports it as ``policy.rules`` and calls :func:`evaluate`
  on the resources registered under Pulumi mocks.

That is why this module imports nothing from ``pulumi_policy`` (the plan must not need it), nothing
from ``pulumi``, and nothing relative (it is loaded under two names).

Each rule is named after the AWS Security Hub (Foundational Security Best Practices) control it
mirrors; where our rule is stricter than the control, its description says so.

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

import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_PRODUCTION_STACKS",
    "MIN_BACKUP_RETENTION_DAYS",
    "RULES",
    "SUPPORTED_PYTHON_RUNTIMES",
    "Rule",
    "RuleContext",
    "Violation",
    "evaluate",
    "is_production_stack",
    "is_unknown",
    "rule_by_id",
    "rule_by_name",
]

# --------------------------------------------------------------------------------------------------
# Data that changes over time: keep it here, in one place.
# --------------------------------------------------------------------------------------------------

SUPPORTED_PYTHON_RUNTIMES: frozenset[str] = frozenset(
    {"python3.10", "python3.11", "python3.12", "python3.13", "python3.14"}
)
"""Python runtimes Lambda still supports (creates and patches).

Source: "Supported runtimes" in the AWS Lambda Developer Guide
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html), which Security Hub's Lambda.2
follows. python3.14 was added in November 2025; python3.9 reached deprecation on 15 December 2025.
When AWS deprecates a version, remove it here; when it adds one, add it (pulumi_aws's
``lambda_.Runtime`` enum lists the identifiers the provider knows).
"""

MIN_BACKUP_RETENTION_DAYS = 7
"""RDS.11: Security Hub's default ``minimumBackupRetentionPeriod``."""

DEFAULT_PRODUCTION_STACKS: tuple[str, ...] = ("prod",)
"""Stack names treated as production unless a rule's ``productionStacks`` setting says otherwise."""

DEFAULT_MIN_LOG_RETENTION_DAYS = 1
"""CloudWatch.16 minimum. Security Hub's default is 365 days; we require an explicit, finite
retention (never-expire is a violation) and let the setting raise the floor."""

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


# --------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------


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
        plain = _plain(props or {})
        if not isinstance(plain, Mapping):
            return []
        return self.check(plain, ctx)


# --------------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------------


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


def _plain(value: Any) -> Any:
    """Plain dict/list copy with secrets unwrapped and every unknown replaced by ``_UNKNOWN``.

    Assets and archives (engine envelopes, or pulumi.Asset objects) only matter as "some value"
    and are kept as they come.
    """
    if isinstance(value, Mapping):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _plain(value.get("value"))
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if is_unknown(value) and _looks_like_data_placeholder(value):
        return _UNKNOWN
    return value


def _looks_like_data_placeholder(value: Any) -> bool:
    # Assets/archives from pulumi (FileArchive etc.) are not "unknown", they're just opaque.
    cls = type(value).__name__
    return not cls.endswith(("Asset", "Archive"))


def _bool(value: Any) -> bool | None:
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


def _number(value: Any) -> float | None:
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


def _list(value: Any) -> list[Any]:
    """The elements of a list input; [] when absent, unknown or not a list."""
    if isinstance(value, list):
        return value
    return []


def _fmt_num(value: float) -> str:
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


# --------------------------------------------------------------------------------------------------
# RDS
# --------------------------------------------------------------------------------------------------

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_PROXY = "aws:rds/proxy:Proxy"


def _check_rds_not_public(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    # Absent: the provider sends publicly_accessible=false (its schema default).
    if _bool(props.get("publiclyAccessible")) is True:
        return ["publiclyAccessible is true; the database must only be reachable from inside the VPC"]
    return []


def _check_rds_encrypted(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    if props.get("replicateSourceDb") is not None:
        return []  # a replica inherits the source's encryption
    raw = props.get("storageEncrypted")
    if is_unknown(raw):
        return []
    if _bool(raw) is not True:
        return [
            "storageEncrypted is not true; storage (and its snapshots and backups) must be encrypted at rest"
        ]
    return []


def _check_rds_backups(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    if props.get("replicateSourceDb") is not None:
        return []  # backups of a read replica are configured on the source
    raw = props.get("backupRetentionPeriod")
    if is_unknown(raw):
        return []
    days = _number(raw)
    if days is None:
        return [
            "backupRetentionPeriod is not set (AWS then keeps 1 day); "
            f"set at least {MIN_BACKUP_RETENTION_DAYS} days"
        ]
    if days < MIN_BACKUP_RETENTION_DAYS:
        return [
            f"backupRetentionPeriod is {_fmt_num(days)} days; "
            f"at least {MIN_BACKUP_RETENTION_DAYS} are required"
        ]
    return []


def _check_rds_multi_az(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("multiAz")
    if is_unknown(raw):
        return []
    if _bool(raw) is not True:
        return [
            f"multiAz is not true on production stack {ctx.stack!r}; "
            "production needs a standby in a second AZ"
        ]
    return []


def _check_rds_deletion_protection(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("deletionProtection")
    if is_unknown(raw):
        return []
    if _bool(raw) is not True:
        return [f"deletionProtection is not true on production stack {ctx.stack!r}"]
    return []


def _check_proxy_tls(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("requireTls")
    if is_unknown(raw):
        return []
    if _bool(raw) is not True:
        return ["requireTls is not true; the proxy must refuse connections that don't use TLS"]
    return []


# --------------------------------------------------------------------------------------------------
# EC2 security groups
# --------------------------------------------------------------------------------------------------

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def _is_open_cidr(cidr: Any) -> bool:
    """0.0.0.0/0, ::/0 and their spellings (any prefix length 0)."""
    if not isinstance(cidr, str) or is_unknown(cidr):
        return False
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _open_cidrs(*lists: Any) -> list[str]:
    return [c for lst in lists for c in _list(lst) if _is_open_cidr(c)]


def _describe_ports(rule: Mapping[str, Any]) -> str:
    proto = rule.get("protocol", rule.get("ipProtocol"))
    lo, hi = _number(rule.get("fromPort")), _number(rule.get("toPort"))
    if str(proto) in ("-1", "all"):
        return "all traffic"
    if lo is not None and hi is not None:
        ports = _fmt_num(lo) if lo == hi else f"{_fmt_num(lo)}-{_fmt_num(hi)}"
        return f"{proto} port {ports}"
    return f"protocol {proto}"


def _check_no_open_ingress(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    messages: list[str] = []
    # SecurityGroup / DefaultSecurityGroup: inline ingress blocks.
    for i, block in enumerate(_list(props.get("ingress"))):
        if not isinstance(block, Mapping):
            continue
        for cidr in _open_cidrs(block.get("cidrBlocks"), block.get("ipv6CidrBlocks")):
            messages.append(f"ingress[{i}] allows {_describe_ports(block)} from {cidr}")
    # aws:ec2/securityGroupRule: one type for both directions; only ingress counts (unknown type: skip).
    if props.get("type") == "ingress":
        for cidr in _open_cidrs(props.get("cidrBlocks"), props.get("ipv6CidrBlocks")):
            messages.append(f"ingress rule allows {_describe_ports(props)} from {cidr}")
    for key in ("cidrIpv4", "cidrIpv6"):
        # aws:vpc/securityGroupIngressRule: one CIDR per rule.
        if _is_open_cidr(props.get(key)):
            messages.append(f"ingress rule allows {_describe_ports(props)} from {props[key]}")
    return messages


def _check_default_sg_closed(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    messages = []
    for direction in ("ingress", "egress"):
        value = props.get(direction)
        if is_unknown(value):
            continue
        rules = _list(value)
        if rules:
            messages.append(
                f"the default security group has {len(rules)} {direction} rule(s); it must have none "
                "(pass ingress=[] and egress=[] and use dedicated security groups)"
            )
    return messages


# --------------------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------------------

IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_USER_POLICY = "aws:iam/userPolicy:UserPolicy"
IAM_GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
IAM_ROLE = "aws:iam/role:Role"


def _policy_document(raw: Any) -> tuple[Mapping[str, Any] | None, str | None]:
    """(document, error). (None, None) when the document is absent or unknown."""
    if raw is None or is_unknown(raw):
        return None, None
    if isinstance(raw, str):
        if not raw.strip():
            return None, None
        try:
            raw = json.loads(raw)
        except ValueError as e:
            return None, f"policy document is not valid JSON ({e})"
    raw = _plain(raw)
    if not isinstance(raw, Mapping):
        return None, "policy document is not a JSON object"
    return raw, None


def _as_strings(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None:
        return []
    return [value]


def _is_service_wildcard(action: Any) -> bool:
    """``*`` or ``service:*`` (IAM actions are case-insensitive)."""
    if not isinstance(action, str) or is_unknown(action):
        return False
    a = action.strip()
    return a == "*" or (a.endswith(":*") and a.count(":") == 1)


def _wildcard_findings(document: Mapping[str, Any], where: str) -> list[str]:
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    messages = []
    for i, st in enumerate(_list(statements)):
        if not isinstance(st, Mapping) or st.get("Effect") != "Allow":
            continue  # Deny with wildcards only narrows access
        label = f"{where}Statement[{i}]" + (f" ({st['Sid']})" if isinstance(st.get("Sid"), str) else "")
        wild_actions = [a for a in _as_strings(st.get("Action")) if _is_service_wildcard(a)]
        if wild_actions:
            messages.append(f"{label} allows wildcard action(s) {', '.join(map(str, wild_actions))}")
        if "NotAction" in st:
            messages.append(f"{label} uses Allow with NotAction, which grants every other action")
        if any(isinstance(r, str) and r.strip() == "*" for r in _as_strings(st.get("Resource"))):
            messages.append(f'{label} allows Resource "*"; name the resources (ARNs) instead')
        if "NotResource" in st:
            messages.append(f"{label} uses Allow with NotResource, which grants every other resource")
    return messages


def _check_iam_no_wildcards(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    """Identity policies only: ``policy`` of Policy/RolePolicy/..., ``inlinePolicies[].policy`` of Role.

    A role's ``assumeRolePolicy`` is a trust policy (who may assume the role) and has no Resource;
    it is not checked here.
    """
    documents: list[tuple[Any, str]] = []
    if "policy" in props:
        documents.append((props.get("policy"), ""))
    for i, inline in enumerate(_list(props.get("inlinePolicies"))):
        if isinstance(inline, Mapping):
            name = inline.get("name")
            label = f"inlinePolicies[{i}]" + (
                f" ({name})" if isinstance(name, str) and not is_unknown(name) else ""
            )
            documents.append((inline.get("policy"), label + " "))
    messages = []
    for raw, where in documents:
        document, error = _policy_document(raw)
        if error:
            messages.append(f"{where}{error}".strip())
        if document is not None:
            messages.extend(_wildcard_findings(document, where))
    return messages


# --------------------------------------------------------------------------------------------------
# Lambda
# --------------------------------------------------------------------------------------------------

LAMBDA_FUNCTION = "aws:lambda/function:Function"

# Name fragments that mean "this variable holds a credential". Matched against the upper-cased name
# split on anything that isn't a letter or digit, and (for the long ones) as substrings, so that
# DBPASSWORD and MYSQL_PWD both count.
_SECRET_SUBSTRINGS = ("PASSWORD", "PASSWD", "SECRET", "PRIVATEKEY", "APIKEY", "CREDENTIAL")
_SECRET_WORDS = frozenset({"PWD", "PASS", "PASSPHRASE", "TOKEN", "APIKEY", "AUTHTOKEN"})
_SECRET_WORD_PAIRS = frozenset({("PRIVATE", "KEY"), ("API", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY")})
# A name ending in one of these points at a secret instead of holding one
# (DB_SECRET_ARN, TOKEN_SSM_PARAMETER).
_REFERENCE_SUFFIXES = frozenset(
    {"ARN", "ID", "NAME", "PATH", "PARAM", "PARAMETER", "SSM", "REF", "FILE", "URI", "URL"}
)
# Values that are references, not secrets.
_REFERENCE_VALUE = re.compile(r"^(arn:aws[a-z-]*:(secretsmanager|ssm|kms):|\{\{resolve:)", re.IGNORECASE)


def secret_like_env_name(name: str) -> bool:
    """Whether an environment variable name looks like it carries a credential."""
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    squashed = "".join(words)
    if any(s in squashed for s in _SECRET_SUBSTRINGS):
        return True
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_WORD_PAIRS for pair in itertools.pairwise(words))


def _check_lambda_env_secrets(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    environment = props.get("environment")
    if not isinstance(environment, Mapping):
        return []
    variables = environment.get("variables")
    if not isinstance(variables, Mapping):
        return []
    messages = []
    for name, value in variables.items():
        if not secret_like_env_name(name):
            continue
        if isinstance(value, str) and _REFERENCE_VALUE.match(value):
            continue
        messages.append(
            f"environment variable {name} looks like a credential; Lambda environment variables are "
            "readable by anyone with lambda:GetFunctionConfiguration. Store it in Secrets Manager "
            "(pass its ARN), or use IAM authentication"
        )
    return messages


def _check_lambda_runtime(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    if props.get("packageType") == "Image":
        return []  # the runtime lives in the image
    runtime = props.get("runtime")
    if runtime is None or is_unknown(runtime):
        return []
    if runtime not in SUPPORTED_PYTHON_RUNTIMES:
        supported = ", ".join(
            sorted(SUPPORTED_PYTHON_RUNTIMES, key=lambda r: [int(x) for x in r[6:].split(".")])
        )
        return [f"runtime {runtime!r} is not a supported Python runtime ({supported})"]
    return []


# --------------------------------------------------------------------------------------------------
# CloudWatch Logs
# --------------------------------------------------------------------------------------------------

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _check_log_retention(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    raw = props.get("retentionInDays")
    if is_unknown(raw):
        return []
    minimum = _number(ctx.config.get("minRetentionDays")) or DEFAULT_MIN_LOG_RETENTION_DAYS
    days = _number(raw)
    if days is None or days <= 0:
        return ["retentionInDays is not set, so the log group never expires; set a retention period"]
    if days < minimum:
        return [f"retentionInDays is {_fmt_num(days)}; at least {_fmt_num(minimum)} is required"]
    return []


# --------------------------------------------------------------------------------------------------
# The rule list
# --------------------------------------------------------------------------------------------------

_PRODUCTION_SCHEMA: Mapping[str, Mapping[str, Any]] = {
    "productionStacks": {
        "type": "array",
        "items": {"type": "string"},
        "default": list(DEFAULT_PRODUCTION_STACKS),
        "description": "Stack names this rule treats as production (it applies to no other stack).",
    }
}


def _url(service: str, number: int) -> str:
    return f"{_SECURITY_HUB_DOCS}/{service}-controls.html#{service}-{number}"


RULES: list[Rule] = [
    Rule(
        id="RDS.2",
        name="rds-not-public",
        description="RDS DB instances and clusters must not be publicly accessible.",
        resource_types=(RDS_INSTANCE, RDS_CLUSTER, RDS_CLUSTER_INSTANCE),
        check=_check_rds_not_public,
        severity="critical",
        remediation="Set publicly_accessible=False and place the database in private subnets.",
        url=_url("rds", 2),
    ),
    Rule(
        id="RDS.3",
        name="rds-storage-encrypted",
        description="RDS DB instances and clusters must have storage encryption at rest enabled.",
        resource_types=(RDS_INSTANCE, RDS_CLUSTER),
        check=_check_rds_encrypted,
        severity="medium",
        remediation="Set storage_encrypted=True (optionally with a customer managed kms_key_id).",
        url=_url("rds", 3),
    ),
    Rule(
        id="RDS.11",
        name="rds-backup-retention",
        description=f"RDS DB instances and clusters must keep automated backups for at least "
        f"{MIN_BACKUP_RETENTION_DAYS} days.",
        resource_types=(RDS_INSTANCE, RDS_CLUSTER),
        check=_check_rds_backups,
        severity="medium",
        remediation=f"Set backup_retention_period to {MIN_BACKUP_RETENTION_DAYS} or more.",
        url=_url("rds", 11),
    ),
    Rule(
        id="RDS.5",
        name="rds-multi-az-prod",
        description="RDS DB instances on production stacks must be Multi-AZ.",
        resource_types=(RDS_INSTANCE,),
        check=_check_rds_multi_az,
        severity="medium",
        production_only=True,
        config_schema=_PRODUCTION_SCHEMA,
        remediation="Set multi_az=True (config dbMultiAz: true) on production stacks.",
        url=_url("rds", 5),
    ),
    Rule(
        id="RDS.8",
        name="rds-deletion-protection-prod",
        description="RDS DB instances (and clusters, Security Hub RDS.7) on production stacks must have "
        "deletion protection enabled.",
        resource_types=(RDS_INSTANCE, RDS_CLUSTER),
        check=_check_rds_deletion_protection,
        severity="low",
        production_only=True,
        config_schema=_PRODUCTION_SCHEMA,
        remediation="Set deletion_protection=True (config dbDeletionProtection: true) on production stacks.",
        url=_url("rds", 8),
    ),
    Rule(
        id="RDS.43",
        name="rds-proxy-require-tls",
        description="RDS proxies must require TLS for client connections.",
        resource_types=(RDS_PROXY,),
        check=_check_proxy_tls,
        severity="medium",
        remediation="Set require_tls=True (config requireTls: true).",
        url=_url("rds", 43),
    ),
    Rule(
        id="EC2.18",
        name="sg-no-open-ingress",
        description="Security groups must not allow ingress from 0.0.0.0/0 or ::/0 on any port "
        "(stricter than EC2.18, which by default tolerates 80 and 443).",
        resource_types=(
            SECURITY_GROUP,
            DEFAULT_SECURITY_GROUP,
            SECURITY_GROUP_RULE,
            SECURITY_GROUP_INGRESS_RULE,
        ),
        check=_check_no_open_ingress,
        severity="high",
        remediation="Allow ingress from a security group (referenced_security_group_id) or a narrow CIDR.",
        url=_url("ec2", 18),
    ),
    Rule(
        id="EC2.2",
        name="default-sg-no-rules",
        description="A VPC's default security group must have no inbound and no outbound rules.",
        resource_types=(DEFAULT_SECURITY_GROUP,),
        check=_check_default_sg_closed,
        severity="high",
        remediation="Manage the default security group with ingress=[] and egress=[].",
        url=_url("ec2", 2),
    ),
    Rule(
        id="IAM.21",
        name="iam-no-wildcards",
        description='IAM policies we write must not allow wildcard actions ("*", "service:*"), '
        'Resource "*", NotAction or NotResource (IAM.21 covers the service wildcards).',
        resource_types=(IAM_POLICY, IAM_ROLE_POLICY, IAM_USER_POLICY, IAM_GROUP_POLICY, IAM_ROLE),
        check=_check_iam_no_wildcards,
        severity="low",
        remediation="List the actions you need and the ARNs they apply to.",
        url=_url("iam", 21),
    ),
    Rule(
        id="Custom.1",
        name="lambda-no-secret-env",
        description="Lambda environment variables must not hold passwords, tokens or keys (no Security Hub "
        "control; same intent as Checkov CKV_AWS_45).",
        resource_types=(LAMBDA_FUNCTION,),
        check=_check_lambda_env_secrets,
        severity="high",
        remediation="Keep the secret in Secrets Manager and pass its ARN, or use IAM database "
        "authentication.",
        url="https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html",
    ),
    Rule(
        id="Lambda.2",
        name="lambda-supported-runtime",
        description="Lambda functions must use a Python runtime AWS still supports.",
        resource_types=(LAMBDA_FUNCTION,),
        check=_check_lambda_runtime,
        severity="medium",
        remediation="Move the function to a runtime in SUPPORTED_PYTHON_RUNTIMES (policy/rules.py).",
        url=_url("lambda", 2),
    ),
    Rule(
        id="CloudWatch.16",
        name="log-group-retention",
        description="CloudWatch log groups must have a finite retention period "
        "(never-expire is a violation).",
        resource_types=(LOG_GROUP,),
        check=_check_log_retention,
        severity="medium",
        config_schema={
            "minRetentionDays": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_MIN_LOG_RETENTION_DAYS,
                "description": "Smallest accepted retentionInDays (Security Hub's default is 365).",
            }
        },
        remediation="Set retention_in_days (e.g. 14 for dev, 90+ for prod).",
        url=_url("cloudwatch", 16),
    ),
]


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


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------


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
    rules: Sequence[Rule] | None = None,
) -> list[Violation]:
    """Run every rule on every resource; return the violations in resource order.

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
    active = list(rules if rules is not None else RULES)
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
    return violations
