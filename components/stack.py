"""RdsProxyStack: the whole deployment, composed from the five components."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.credentials import Credentials, CredentialsArgs
from components.database import Database, DatabaseArgs
from components.networking import Networking, NetworkingArgs
from components.probe import ProbeFunction, ProbeFunctionArgs
from components.proxy import Proxy, ProxyArgs
from components.settings import Settings


@dataclass(frozen=True, kw_only=True)
class RdsProxyStackArgs:
    """The validated settings of one stack."""

    settings: Settings


class RdsProxyStack(pulumi.ComponentResource):
    """RDS MySQL behind RDS Proxy, credentials in Secrets Manager, and a probe Lambda, in a private VPC.

    Deploy graph: the database (10-15 min) and the proxy (3-5 min) build in parallel; only the proxy
    target waits for the instance, and the probe waits only for the proxy.
    """

    outputs: dict[str, pulumi.Output]
    """The stack outputs, by their exported names."""

    def __init__(
        self, name: str, args: RdsProxyStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rdsproxy:index:RdsProxyStack", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        net = Networking(
            f"{name}-net", NetworkingArgs(vpc_cidr=s.vpc_cidr, az_count=s.az_count, db_port=s.db_port), child
        )
        creds = Credentials(
            f"{name}-creds", CredentialsArgs(username=s.db_username, protect=s.db_deletion_protection), child
        )
        db = Database(
            f"{name}-db",
            DatabaseArgs(
                subnet_group_name=net.db_subnet_group_name,
                security_group_ids=[net.db_security_group_id],
                username=creds.username,
                password=creds.password,
                db_name=s.db_name,
                instance_class=s.db_instance_class,
                engine_version=s.db_engine_version,
                allocated_storage=s.db_allocated_storage,
                backup_retention_days=s.db_backup_retention_days,
                multi_az=s.db_multi_az,
                deletion_protection=s.db_deletion_protection,
                skip_final_snapshot=s.db_skip_final_snapshot,
                final_snapshot_identifier=f"{s.resource_prefix}-final",
                port=s.db_port,
            ),
            child,
        )
        proxy = Proxy(
            f"{name}-proxy",
            ProxyArgs(
                proxy_name=s.resource_prefix,
                subnet_ids=net.private_subnet_ids,
                security_group_ids=[net.proxy_security_group_id],
                secret_arn=creds.secret_arn,
                role_arn=creds.proxy_role_arn,
                db_instance_id=db.instance_id,
                pool=s.pool,
                iam_auth=s.iam_auth,
                require_tls=s.require_tls,
                debug_logging=s.debug_logging,
                init_query=s.init_query,
                session_pinning_filters=s.session_pinning_filters,
            ),
            child,
        )
        probe = ProbeFunction(
            f"{name}-probe",
            ProbeFunctionArgs(
                function_name=f"{s.resource_prefix}-probe",
                subnet_ids=net.private_subnet_ids,
                security_group_ids=[net.probe_security_group_id],
                proxy_endpoint=proxy.endpoint,
                proxy_arn=proxy.arn,
                db_user=s.db_username,
                db_name=s.db_name,
                iam_auth_required=s.iam_auth_required,
                db_port=s.db_port,
                timeout=s.probe_timeout,
                memory_size=s.probe_memory_size,
            ),
            child,
        )

        self.outputs = {
            "proxyEndpoint": proxy.endpoint,
            "proxyName": proxy.proxy_name,
            "proxyArn": proxy.arn,
            "dbInstanceId": db.instance_id,
            "dbEndpoint": db.address,
            "secretArn": creds.secret_arn,
            "probeFunctionName": probe.function_name,
            "vpcId": net.vpc_id,
            "privateSubnetIds": net.private_subnet_ids,
        }
        self.register_outputs(self.outputs)
