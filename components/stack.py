"""RdsProxyStack: the whole deployment, a star of components wired output to input.

Every AWS resource is one hop from here: networking.py (VPC, subnets, security groups), credentials.py (the
master secret), database.py (the RDS instance or cluster, and read replicas), proxy.py (the proxy, its role,
log group, pool, target and reader endpoint), probe.py (the probe Lambda, its role and log group), users.py
(the database users, their secrets and the bootstrap Lambda that creates them), encryption.py (the stack's
KMS key), flow_logs.py (the VPC flow log), rotation.py (the master secret's rotation), monitoring.py (alarm
topic, alarms, RDS event subscriptions, dashboard; only when monitoringEnabled) and dr.py (a primary's
DR-region key and secret replicas; a standby's replica in place of the database).

Two shapes, one program: a primary (the database, its secrets, optionally replicated to a DR region) and a
standby (`drPrimaryStack` set: the same network, encryption, proxy and probe around a cross-region read
replica, reading the primary only through `PrimaryStack`, which `__main__.py` builds from a StackReference).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.credentials import Credentials, CredentialsArgs
from components.database import ENGINE, Database, DatabaseArgs, require_rds_service_linked_role
from components.dr import (
    DrPrimarySettings,
    DrReplication,
    DrReplicationArgs,
    DrStandbySettings,
    PrimaryStack,
    StandbyDatabase,
    StandbyDatabaseArgs,
    replica_secret_arns,
    standby_access,
)
from components.encryption import Encryption, EncryptionArgs
from components.flow_logs import FlowLogs, FlowLogsArgs
from components.iam import arn_part
from components.monitoring import Monitoring, MonitoringArgs
from components.networking import Networking, NetworkingArgs
from components.probe import ProbeFunction, ProbeFunctionArgs
from components.proxy import Proxy, ProxyArgs
from components.rotation import Rotation, RotationArgs
from components.settings import Settings
from components.target import ClusterTarget
from components.users import DbUsers, DbUsersArgs, connect_arns

STACK_OUTPUTS: dict[str, str] = {
    "proxyEndpoint": "Hostname clients connect to (TLS, port 3306).",
    "proxyName": "The proxy's name (CloudWatch `ProxyName` dimension).",
    "proxyArn": "The proxy's ARN; its last field is the prx-… id that `rds-db:connect` ARNs use.",
    "dbInstanceId": "The DB instance identifier.",
    "dbEndpoint": "The instance's private hostname (direct connections bypass the proxy).",
    "secretArn": "The master credentials secret.",
    "probeFunctionName": "The probe Lambda to invoke.",
    "vpcId": "The VPC.",
    "privateSubnetIds": "The private subnets, one per Availability Zone.",
    "dbUserConnectArns": "dbUsers entry reached with IAM → the exact `rds-db:connect` ARN (through the proxy) "
    "an application role must be granted to log in as that user.",
    "dbUserSecretArns": "dbUsers entry → its Secrets Manager secret (proxyDefaultAuthScheme NONE; empty under "
    "IAM_AUTH, where users have no password).",
    # Read scaling: exported only when the topology and config have them (README, "Read scaling").
    "dbReplicaEndpoints": "instance with dbReadReplicas > 0: the read replicas' hostnames (read directly).",
    "replicaClientSecurityGroupId": "instance with dbReadReplicas > 0: the group for direct replica readers.",
    "dbClusterId": "aurora, multi-az-cluster: the DB cluster identifier.",
    "dbReaderEndpoint": "aurora, multi-az-cluster: the cluster's own reader endpoint (bypasses the proxy).",
    "proxyReaderEndpoint": "proxyReaderEndpoint: true: the proxy's READ_ONLY endpoint (TLS, port 3306).",
    # Monitoring: exported only when monitoringEnabled (README, "Monitoring").
    "alarmTopicArn": "monitoringEnabled: the SNS topic the alarms and RDS events publish to.",
    "dashboardName": "monitoringEnabled: the CloudWatch dashboard.",
    "dashboardUrl": "monitoringEnabled: console link to the dashboard.",
    # DR (README "Disaster recovery: the standby stack"): only on stacks that take part in DR.
    "dbArn": "DR stacks (both roles): the DB instance's ARN; a standby replicates from the primary's.",
    "vpcCidr": "DR stacks (both roles): the VPC's range; a standby's must not overlap its primary's.",
    "drRegion": "DR primary: the standby's region.",
    "drReplicaSecretArns": "DR primary: database user -> ARN of that user's secret replica in drRegion.",
    "drKeyArn": "DR primary: the KMS key (in drRegion) that encrypts the secret replicas.",
    "drState": "DR standby: `standby` (a replica, proxy without target) or `promoted` (the proxy serves it).",
}
"""The stack outputs users script against, by exported name: the one list (README and tests read it).
For `instance`, dbInstanceId and dbEndpoint are the instance's; for clusters dbEndpoint is the cluster's
writer endpoint and dbInstanceId is not exported."""


@dataclass(frozen=True, kw_only=True)
class RdsProxyStackArgs:
    """The validated settings of one stack, and for a standby its primary's outputs."""

    settings: Settings
    primary: PrimaryStack | None = None
    """Required when `settings.dr` is a standby: read from a StackReference in `__main__.py`."""


class RdsProxyStack(pulumi.ComponentResource):
    """RDS MySQL behind RDS Proxy, credentials in Secrets Manager, and a probe Lambda, in a private VPC.

    Deploy graph: the database (10-15 min) and the proxy (3-5 min) build in parallel; only the proxy
    target (for a cluster: once the cluster and its instances exist) and the users bootstrap (its function,
    its invocation and the user secrets' values, which hold the database's host) wait for the database, and
    the probe waits only for the proxy.
    """

    outputs: dict[str, pulumi.Output]
    """The stack outputs, by their exported names (exactly STACK_OUTPUTS)."""

    def __init__(
        self, name: str, args: RdsProxyStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        standby = args.settings.dr if isinstance(args.settings.dr, DrStandbySettings) else None
        if standby is not None:
            if args.primary is None:
                raise ValueError("a DR standby needs its primary's outputs (RdsProxyStackArgs.primary)")
            # Every resource is a descendant: none registers before the primary's outputs passed their checks.
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[args.primary.checked])
            )
        super().__init__("rdsproxy:index:RdsProxyStack", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        require_rds_service_linked_role(pulumi.InvokeOptions(parent=self))
        net = Networking(
            f"{name}-net",
            NetworkingArgs(
                settings=s.network,
                db_port=s.database.port,
                replica_clients=s.database.read_replicas > 0,
            ),
            child,
        )
        # --- security (issue 14): the key first; everything that stores data is encrypted with it ---------
        log_group_names = [
            s.proxy.log_group_name,
            s.probe.log_group_name,
            s.users.log_group_name,
            *s.database.log_group_names,
        ]
        if s.flow_logs is not None:
            log_group_names.append(s.flow_logs.log_group_name)
        if s.rotation is not None:
            log_group_names.append(s.rotation.log_group_name)
        enc = Encryption(
            f"{name}-encryption",
            EncryptionArgs(
                log_group_names=log_group_names,
                account_arn=net.vpc_arn,
                settings=s.security,
            ),
            child,
        )
        # --- end security --------------------------------------------------------------------------------
        replication: DrReplication | None = None
        creds: Credentials | None = None
        db: Database | StandbyDatabase
        if standby is not None and args.primary is not None:
            # A DR standby (issue 12): no database or secrets of its own; the primary's replica in their place,
            # and the proxy reads the primary's secrets through their replicas in this region.
            db = StandbyDatabase(
                f"{name}-db",
                StandbyDatabaseArgs(
                    subnet_group_name=net.db_subnet_group_name,
                    security_group_ids=[net.db_security_group_id],
                    source_db_arn=args.primary.db_arn,
                    settings=s.database,
                    dr=standby,
                    kms_key_arn=enc.key_arn,
                    account_arn=net.vpc_arn,
                ),
                child,
            )
            # The replica copies the primary's users; the proxy reads their secrets' replicas here.
            access = standby_access(args.primary, s.credentials, s.users)
            auths, logins, iam_db_users = access.auths, access.logins, access.iam_db_users
            secret_arn = access.master_secret_arn
            user_secret_arns: dict[str, pulumi.Input[str]] = {}
        else:
            replication = (  # DR primary (issue 12): a key in drRegion; every secret replicates there
                DrReplication(f"{name}-dr", DrReplicationArgs(settings=s.dr), child)
                if isinstance(s.dr, DrPrimarySettings)
                else None
            )
            creds = Credentials(
                f"{name}-creds",
                CredentialsArgs(
                    settings=s.credentials,
                    kms_key_arn=enc.key_arn,
                    replicas=replication.secret_replicas if replication is not None else (),
                ),
                child,
            )
            db = Database(
                f"{name}-db",
                DatabaseArgs(
                    subnet_group_name=net.db_subnet_group_name,
                    security_group_ids=[net.db_security_group_id],
                    username=creds.username,
                    password=creds.password,
                    settings=s.database,
                    replica_security_group_ids=None
                    if net.replica_security_group_id is None
                    else [net.replica_security_group_id],
                    kms_key_arn=enc.key_arn,
                    account_arn=net.vpc_arn,
                ),
                child,
            )
            creds.store(host=db.address, port=db.port, db_name=db.db_name, engine=ENGINE)
            assert net.users_security_group_id is not None
            users = DbUsers(
                f"{name}-users",
                DbUsersArgs(
                    subnet_ids=net.private_subnet_ids,
                    security_group_ids=[net.users_security_group_id],
                    db_address=db.address,
                    db_port=db.port,
                    master_secret_arn=creds.secret_arn,
                    kms_key_arn=enc.key_arn,
                    network_ready=net.users_network,
                    # A cluster's endpoint exists before its instances do: log in only once they are up.
                    db_ready=list(db.target.members) if isinstance(db.target, ClusterTarget) else [],
                    replicas=replication.secret_replicas if replication is not None else (),
                    settings=s.users,
                ),
                child,
            )
            auths = [*creds.auths, *users.auths]
            logins, iam_db_users = users.logins, users.iam_db_users
            secret_arn = creds.secret_arn
            user_secret_arns = dict(users.secret_arns)

        proxy = Proxy(
            f"{name}-proxy",
            ProxyArgs(
                subnet_ids=net.private_subnet_ids,
                security_group_ids=[net.proxy_security_group_id],
                target=db.target,
                auths=auths,
                settings=s.proxy,
                iam_db_users=iam_db_users,
                kms_key_arn=enc.key_arn,
                role_moved_from=creds,
            ),
            child,
        )
        probe = ProbeFunction(
            f"{name}-probe",
            ProbeFunctionArgs(
                subnet_ids=net.private_subnet_ids,
                security_group_ids=[net.probe_security_group_id],
                proxy_endpoint=proxy.endpoint,
                proxy_arn=proxy.arn,
                db_name=db.db_name,
                db_port=db.port,
                logins=logins,
                settings=s.probe,
                proxy_reader_endpoint=proxy.reader_endpoint,
                kms_key_arn=enc.key_arn,
            ),
            child,
        )
        # --- security (issue 14): flow logs and rotation, both optional sections -------------------------
        if s.flow_logs is not None:
            FlowLogs(
                f"{name}-flow-logs",
                FlowLogsArgs(
                    vpc_id=net.vpc_id, vpc_arn=net.vpc_arn, kms_key_arn=enc.key_arn, settings=s.flow_logs
                ),
                child,
            )
        if s.rotation is not None and creds is not None:  # a standby's replicas follow the primary's rotation
            assert net.secrets_manager_endpoint is not None and net.secrets_manager_endpoint_security_group_id
            Rotation(
                f"{name}-rotation",
                RotationArgs(
                    secret_arns=[creds.secret_arn],
                    user_secret_arns=user_secret_arns,
                    vpc_id=net.vpc_id,
                    vpc_arn=net.vpc_arn,
                    subnet_ids=net.private_subnet_ids,
                    db_security_group_id=net.db_security_group_id,
                    db_port=db.port,
                    endpoint_security_group_id=net.secrets_manager_endpoint_security_group_id,
                    endpoint=net.secrets_manager_endpoint,
                    kms_key_arn=enc.key_arn,
                    settings=s.rotation,
                ),
                child,
            )
        # --- end security --------------------------------------------------------------------------------

        # Monitoring is optional: without it its three outputs are not exported, like a topology's missing ones.
        monitoring_outputs: dict[str, pulumi.Output | None] = dict.fromkeys(
            ("alarmTopicArn", "dashboardName", "dashboardUrl")
        )
        if s.monitoring is not None:
            monitoring = Monitoring(
                f"{name}-monitoring",
                MonitoringArgs(
                    proxy_name=proxy.proxy_name,
                    proxy_arn=proxy.arn,
                    target=db.instance if isinstance(db, StandbyDatabase) else db.target,
                    replica_instance_id=db.instance_id
                    if isinstance(db, StandbyDatabase) and db.replicating
                    else None,
                    probe_function_name=probe.function_name,
                    # The proxy's own region (from its ARN): the same answer as the provider, without an invoke.
                    region=proxy.arn.apply(lambda a: arn_part(a, 3)),
                    # The stack's key (issue 14): its policy lets CloudWatch alarms and RDS events use it.
                    kms_key_arn=enc.key_arn,
                    settings=s.monitoring,
                ),
                child,
            )
            monitoring_outputs = {
                "alarmTopicArn": monitoring.topic_arn,
                "dashboardName": monitoring.dashboard_name,
                "dashboardUrl": monitoring.dashboard_url,
            }

        entries = [u.name for u in s.users.users]
        iam_entries = [u.name for u in s.users.users if s.users.client_uses_iam(u)]
        outputs: dict[str, pulumi.Output | None] = {
            "proxyEndpoint": proxy.endpoint,
            "proxyName": proxy.proxy_name,
            "proxyArn": proxy.arn,
            "dbInstanceId": db.instance_id,
            "dbEndpoint": db.address,
            "secretArn": pulumi.Output.from_input(secret_arn),
            "probeFunctionName": probe.function_name,
            "vpcId": net.vpc_id,
            "privateSubnetIds": net.private_subnet_ids,
            "dbUserConnectArns": proxy.arn.apply(lambda arn: connect_arns(arn, iam_entries)),
            "dbUserSecretArns": pulumi.Output.from_input(
                {u: arn for u, arn in user_secret_arns.items() if u in entries}
            )
            if creds is not None
            else None,
            "dbReplicaEndpoints": getattr(db, "replica_endpoints", None),
            "replicaClientSecurityGroupId": net.replica_clients_security_group_id,
            "dbClusterId": getattr(db, "cluster_id", None),
            "dbReaderEndpoint": getattr(db, "reader_endpoint", None),
            "proxyReaderEndpoint": proxy.reader_endpoint,
            **monitoring_outputs,
        }
        if isinstance(db, StandbyDatabase) and standby is not None:
            outputs |= {
                "dbArn": db.arn,
                "vpcCidr": pulumi.Output.from_input(s.network.vpc_cidr),
                "drState": pulumi.Output.from_input(standby.state.value),
            }
        if replication is not None and creds is not None and isinstance(db, Database):
            outputs |= {
                "dbArn": pulumi.Output.from_input(db.target.resource_arn),
                "vpcCidr": pulumi.Output.from_input(s.network.vpc_cidr),
                "drRegion": pulumi.Output.from_input(replication.region),
                # Every secret the proxy reads, by database user. Merge hook (users): add each user's secret
                # (and give those secrets `replicas=replication.secret_replicas` too).
                "drReplicaSecretArns": replica_secret_arns(
                    {creds.username: creds.secret_arn, **user_secret_arns}, replication.region
                ),
                "drKeyArn": replication.key_arn,
            }
        # A topology without an output doesn't export it (rather than exporting null).
        self.outputs = {k: v for k, v in outputs.items() if v is not None}
        if not set(self.outputs) <= set(STACK_OUTPUTS):
            raise AssertionError("STACK_OUTPUTS must list every exported output")
        self.register_outputs(self.outputs)
