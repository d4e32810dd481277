"""Networking: a private VPC, one subnet per RDS-Proxy-capable AZ, and the probe → proxy → database chain."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# AZ IDs where RDS Proxy cannot place endpoints (RDS Proxy limitations, "Availability Zones"); subnets are
# picked by AZ *ID* because AZ names are shuffled per account.
PROXY_UNSUPPORTED_AZ_IDS = ("use1-az3",)
HTTPS = 443


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    """The network's section of the stack config."""

    vpc_cidr: str
    az_count: int
    secrets_manager_endpoint: bool = False
    """Create a Secrets Manager interface endpoint (something in the private subnets must reach it)."""
    users_function: bool = False
    """Add the group of the users bootstrap Lambda, which reaches the database directly on the DB port."""
    secrets_manager_clients: tuple[str, ...] = ()
    """Groups ("users", "probe") that call Secrets Manager from inside the VPC. When any does (or
    `secrets_manager_endpoint` is set), the interface endpoint with private DNS is created, admitting HTTPS
    from exactly these groups (and from those that add their own rule)."""


@dataclass(frozen=True, kw_only=True)
class NetworkingArgs:
    """The network section, and the one port the chain opens (the database's)."""

    settings: NetworkSettings
    db_port: int
    replica_clients: bool = False
    """Also build the read replicas' group and the group of the clients that read them directly."""


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """The first `count` subnets, 8 bits longer than the VPC's prefix (but at most /28)."""
    net = ipaddress.ip_network(vpc_cidr)
    new_prefix = min(net.prefixlen + 8, 28)
    subnets = net.subnets(new_prefix=new_prefix)
    return [str(next(subnets)) for _ in range(count)]


def pick_zone_ids(zone_ids: Sequence[str], count: int) -> list[str]:
    """The first `count` supported AZ IDs, or a clear error when the region has too few."""
    usable = [z for z in zone_ids if z not in PROXY_UNSUPPORTED_AZ_IDS]
    if len(usable) < count:
        raise pulumi.RunError(
            f"azCount: {count} is not allowed here; this region has {len(usable)} available AZs that RDS "
            f"Proxy serves ({', '.join(usable) or 'none'}). Lower azCount or pick another region."
        )
    return usable[:count]


class Networking(pulumi.ComponentResource):
    """Private VPC, subnets in distinct AZs, a DB subnet group, and security groups probe → proxy → db."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets, one per AZ, in AZ order."""
    db_subnet_group_name: pulumi.Output[str]
    """DB subnet group spanning the private subnets."""
    probe_security_group_id: pulumi.Output[str]
    """Clients of the proxy (the probe Lambda) sit in this group."""
    proxy_security_group_id: pulumi.Output[str]
    """The proxy's ENIs sit in this group."""
    db_security_group_id: pulumi.Output[str]
    """The database instance sits in this group."""
    users_security_group_id: pulumi.Output[str] | None
    """The users bootstrap Lambda sits in this group (None without `users_function`)."""
    users_network: list[pulumi.Resource]
    """Rules (and the endpoint) the bootstrap needs before it runs: invoke it only once they exist."""
    replica_security_group_id: pulumi.Output[str] | None
    """The read replicas sit in this group (only with `replica_clients`)."""
    replica_clients_security_group_id: pulumi.Output[str] | None
    """Clients that read the replicas directly sit in this group (only with `replica_clients`)."""
    vpc_arn: pulumi.Output[str]
    """The VPC's ARN (its partition, region and account are the stack's)."""
    secrets_manager_endpoint_security_group_id: pulumi.Output[str] | None
    """The Secrets Manager endpoint's group (clients add their own 443 rule to it); None without one."""
    secrets_manager_endpoint: pulumi.Resource | None

    def __init__(self, name: str, args: NetworkingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rdsproxy:index:Networking", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings

        # Asked first and synchronously, so a region with too few proxy-capable AZs fails before any
        # resource is declared (Networking is the stack's first component).
        zones = aws.get_availability_zones(
            state="available",
            exclude_zone_ids=list(PROXY_UNSUPPORTED_AZ_IDS),
            filters=[
                aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])
            ],
            opts=pulumi.InvokeOptions(parent=self),
        )
        zone_ids = pick_zone_ids(zones.zone_ids, s.az_count)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=s.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # Take over the default security group and strip its rules: nothing may land in an open group.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child)

        subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{i + 1}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone_id=zone_id,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{i + 1}"},
                opts=child,
            )
            for i, (cidr, zone_id) in enumerate(
                zip(subnet_cidrs(s.vpc_cidr, s.az_count), zone_ids, strict=True)
            )
        ]
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-db-subnets",
            subnet_ids=[s.id for s in subnets],
            description="Private subnets for the database",
            opts=child,
        )

        roles = [
            ("probe", "Clients of the RDS Proxy (probe Lambda)"),
            ("proxy", "RDS Proxy endpoints"),
            ("db", "RDS database instance"),
        ]
        # Each hop opens one port, only to the next group: (from, to, port, why).
        hops = [
            ("probe", "proxy", args.db_port, "Probe Lambda to RDS Proxy"),
            ("proxy", "db", args.db_port, "RDS Proxy to the database"),
        ]
        if args.replica_clients:
            # RDS Proxy cannot target a read replica, so replicas are read directly, by the clients placed in
            # their own group; the database's group keeps admitting only the proxy (and the users bootstrap).
            roles += [
                ("replica-clients", "Clients that read the RDS read replicas directly"),
                ("replica", "RDS read replicas"),
            ]
            hops.append(("replica-clients", "replica", args.db_port, "Direct readers to the read replicas"))
        if s.users_function:
            roles.append(("users", "Database users bootstrap Lambda (reaches the database directly)"))
            hops.append(("users", "db", args.db_port, "Users bootstrap Lambda to the database"))
        clients = list(dict.fromkeys(s.secrets_manager_clients))
        groups = {
            role: aws.ec2.SecurityGroup(
                f"{name}-{role}-sg", vpc_id=vpc.id, description=description, opts=child
            )
            for role, description in roles
        }
        rules: dict[str, list[pulumi.Resource]] = {}
        for source, target, port, why in hops:
            egress = aws.vpc.SecurityGroupEgressRule(
                f"{name}-{source}-to-{target}",
                security_group_id=groups[source].id,
                referenced_security_group_id=groups[target].id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=why,
                opts=child,
            )
            ingress = aws.vpc.SecurityGroupIngressRule(
                f"{name}-{target}-from-{source}",
                security_group_id=groups[target].id,
                referenced_security_group_id=groups[source].id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=why,
                opts=child,
            )
            rules.setdefault(source, []).extend([egress, ingress])

        self.users_network = list(rules.get("users", []))

        # --- Secrets Manager interface endpoint (issue 14: rotation; issue 8's bootstrap needs it too) ----
        # The subnets have no route out; private DNS makes secretsmanager.<region>.amazonaws.com resolve here.
        self.secrets_manager_endpoint_security_group_id = None
        self.secrets_manager_endpoint = None
        if s.secrets_manager_endpoint or clients:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-secretsmanager-endpoint-sg",
                vpc_id=vpc.id,
                description="Secrets Manager interface endpoint",
                opts=child,
            )
            self.secrets_manager_endpoint = aws.ec2.VpcEndpoint(
                f"{name}-secretsmanager-endpoint",
                vpc_id=vpc.id,
                service_name=vpc.arn.apply(lambda a: f"com.amazonaws.{a.split(':')[3]}.secretsmanager"),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[endpoint_sg.id],
                opts=child,
            )
            self.secrets_manager_endpoint_security_group_id = endpoint_sg.id
            # Issue 8's clients (the users bootstrap, the probe when it reads a password) get their HTTPS rule
            # pair here, like every other hop; issue 14's rotation function adds its own.
            for client in clients:
                why = f"{client} Lambda to the Secrets Manager endpoint"
                pair = [
                    aws.vpc.SecurityGroupEgressRule(
                        f"{name}-{client}-to-vpce",
                        security_group_id=groups[client].id,
                        referenced_security_group_id=endpoint_sg.id,
                        ip_protocol="tcp",
                        from_port=HTTPS,
                        to_port=HTTPS,
                        description=why,
                        opts=child,
                    ),
                    aws.vpc.SecurityGroupIngressRule(
                        f"{name}-vpce-from-{client}",
                        security_group_id=endpoint_sg.id,
                        referenced_security_group_id=groups[client].id,
                        ip_protocol="tcp",
                        from_port=HTTPS,
                        to_port=HTTPS,
                        description=why,
                        opts=child,
                    ),
                ]
                if client == "users":
                    self.users_network += [*pair, self.secrets_manager_endpoint]
        # --- end Secrets Manager endpoint ---------------------------------------------------------------

        self.vpc_id = vpc.id
        self.vpc_arn = vpc.arn
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in subnets])
        self.db_subnet_group_name = subnet_group.name
        self.probe_security_group_id = groups["probe"].id
        self.proxy_security_group_id = groups["proxy"].id
        self.db_security_group_id = groups["db"].id
        self.users_security_group_id = groups["users"].id if s.users_function else None
        self.replica_security_group_id = groups["replica"].id if args.replica_clients else None
        self.replica_clients_security_group_id = (
            groups["replica-clients"].id if args.replica_clients else None
        )
        outputs = {
            "vpc_id": self.vpc_id,
            "private_subnet_ids": self.private_subnet_ids,
            "db_subnet_group_name": self.db_subnet_group_name,
            "probe_security_group_id": self.probe_security_group_id,
            "proxy_security_group_id": self.proxy_security_group_id,
            "db_security_group_id": self.db_security_group_id,
        }
        if args.replica_clients:
            outputs["replica_security_group_id"] = groups["replica"].id
            outputs["replica_clients_security_group_id"] = groups["replica-clients"].id
        self.register_outputs(outputs)
