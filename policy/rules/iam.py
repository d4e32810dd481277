"""IAM identity policies (Security Hub IAM.*)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import Rule, RuleContext, as_list, is_unknown, plain, security_hub_url

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
    raw = plain(raw)
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
    for i, st in enumerate(as_list(statements)):
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
    for i, inline in enumerate(as_list(props.get("inlinePolicies"))):
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


IAM_21 = Rule(
    id="IAM.21",
    name="iam-no-wildcards",
    description='IAM policies we write must not allow wildcard actions ("*", "service:*"), '
    'Resource "*", NotAction or NotResource (IAM.21 covers the service wildcards).',
    resource_types=(IAM_POLICY, IAM_ROLE_POLICY, IAM_USER_POLICY, IAM_GROUP_POLICY, IAM_ROLE),
    check=_check_iam_no_wildcards,
    severity="low",
    remediation="List the actions you need and the ARNs they apply to.",
    url=security_hub_url("iam", 21),
)
