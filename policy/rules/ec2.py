"""EC2 security groups (Security Hub EC2.*)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from .base import (
    Rule,
    RuleContext,
    StackResource,
    StackRule,
    as_list,
    as_number,
    fmt_num,
    is_unknown,
    security_hub_url,
)

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
    return [c for lst in lists for c in as_list(lst) if _is_open_cidr(c)]


def _describe_ports(rule: Mapping[str, Any]) -> str:
    proto = rule.get("protocol", rule.get("ipProtocol"))
    lo, hi = as_number(rule.get("fromPort")), as_number(rule.get("toPort"))
    if str(proto) in ("-1", "all"):
        return "all traffic"
    if lo is not None and hi is not None:
        ports = fmt_num(lo) if lo == hi else f"{fmt_num(lo)}-{fmt_num(hi)}"
        return f"{proto} port {ports}"
    return f"protocol {proto}"


def _check_no_open_ingress(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    messages: list[str] = []
    # SecurityGroup / DefaultSecurityGroup: inline ingress blocks.
    for i, block in enumerate(as_list(props.get("ingress"))):
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


EC2_18 = Rule(
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
    url=security_hub_url("ec2", 18),
)


def _check_default_sg_closed(props: Mapping[str, Any], ctx: RuleContext) -> list[str]:
    messages = []
    for direction in ("ingress", "egress"):
        value = props.get(direction)
        if is_unknown(value):
            continue
        rules = as_list(value)
        if rules:
            messages.append(
                f"the default security group has {len(rules)} {direction} rule(s); it must have none "
                "(pass ingress=[] and egress=[] and use dedicated security groups)"
            )
    return messages


EC2_2 = Rule(
    id="EC2.2",
    name="default-sg-no-rules",
    description="A VPC's default security group must have no inbound and no outbound rules.",
    resource_types=(DEFAULT_SECURITY_GROUP,),
    check=_check_default_sg_closed,
    severity="high",
    remediation="Manage the default security group with ingress=[] and egress=[].",
    url=security_hub_url("ec2", 2),
)


VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"


def _flows_of(vpc: StackResource, flow_log: StackResource) -> bool:
    """Whether `flow_log` logs `vpc`: its vpcId is the VPC's id, or (ids not known yet: preview, the offline
    plan) it depends on the VPC resource, which is how a vpc_id taken from that VPC's output shows up."""
    vpc_id = flow_log.inputs.get("vpcId")
    if isinstance(vpc_id, str) and not is_unknown(vpc_id) and vpc.id is not None and vpc_id == vpc.id:
        return True
    return vpc.urn in flow_log.dependencies


def _check_vpc_flow_logs(
    resources: Sequence[StackResource], ctx: RuleContext
) -> list[tuple[StackResource, str]]:
    flow_logs = [r for r in resources if r.type == FLOW_LOG]
    return [
        (vpc, "no flow log records this VPC's traffic; add an aws.ec2.FlowLog for it (config vpcFlowLogs)")
        for vpc in resources
        if vpc.type == VPC and not any(_flows_of(vpc, f) for f in flow_logs)
    ]


EC2_6 = StackRule(
    id="EC2.6",
    name="vpc-flow-logs",
    description="Every VPC the stack declares must have a flow log (Security Hub EC2.6 asks for REJECT "
    "traffic at least; ALL satisfies it too).",
    check=_check_vpc_flow_logs,
    severity="medium",
    remediation="Set vpcFlowLogs to ALL or REJECT.",
    url=security_hub_url("ec2", 6),
)
