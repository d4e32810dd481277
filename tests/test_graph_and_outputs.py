"""Deploy graph (proxy and probe build while RDS does) and the stack outputs users script against."""

from __future__ import annotations

from tests.conftest import ok

OUTPUTS = {
    "proxyEndpoint",
    "proxyName",
    "proxyArn",
    "dbInstanceId",
    "dbEndpoint",
    "secretArn",
    "probeFunctionName",
    "vpcId",
    "privateSubnetIds",
    "dbUserConnectArns",
    "dbUserSecretArns",
    "alarmTopicArn",
    "dashboardName",
    "dashboardUrl",
}
# Alarms and the event subscription on the database need its identifier, so they (and the dashboard listing
# the alarms) are created once the instance is. The users bootstrap must reach a running database, and the
# secrets' values name the database's host (the shape AWS's rotation functions read); the proxy itself only
# needs the secrets' ARNs, so it still builds while RDS does. Nothing else waits for the instance.
WAIT_FOR_THE_INSTANCE = {
    "rds-proxy-proxy-target",
    "rds-proxy-creds-master-secret-value",
    "rds-proxy-monitoring-db-cpu",
    "rds-proxy-monitoring-db-free-storage",
    "rds-proxy-monitoring-db-freeable-memory",
    "rds-proxy-monitoring-db-events",
    "rds-proxy-monitoring-dashboard",
    "rds-proxy-users-function",
    "rds-proxy-users-bootstrap",
    "rds-proxy-users-rdsproxy_probe-secret-value",
}
# A DR primary (`drRegion` set, e.g. prod) adds what its standby reads (tests/test_dr.py).
DR_PRIMARY_OUTPUTS = {"dbArn", "vpcCidr", "drRegion", "drReplicaSecretArns", "drKeyArn"}


def _is_dr_primary(run) -> bool:
    from plan.config import load_stack_config

    return bool(load_stack_config(run.stack).get("rds-proxy:drRegion"))


def test_only_the_proxy_target_the_databases_monitoring_and_the_users_bootstrap_wait_for_the_instance(
    stack_run,
):
    instance = stack_run.one("aws:rds/instance:Instance")
    waiting = {r.name for r in stack_run.resources if r.custom and stack_run.depends_on(r, instance)}
    assert waiting == WAIT_FOR_THE_INSTANCE


def test_with_more_users_and_iam_auth_still_only_the_target_and_bootstrap_wait():
    for scheme in ("NONE", "IAM_AUTH"):
        run = ok("dev", dbUsers=[{"name": "app"}], proxyDefaultAuthScheme=scheme)
        instance = run.one("aws:rds/instance:Instance")
        waiting = {r.name for r in run.resources if r.custom and run.depends_on(r, instance)}
        expected = set(WAIT_FOR_THE_INSTANCE)
        if scheme == "NONE":
            expected |= {"rds-proxy-users-app-secret-value"}
        else:  # no user secrets; the proxy's rds-db:connect grant names the instance's resource id
            expected -= {"rds-proxy-users-rdsproxy_probe-secret-value"}
            expected |= {"rds-proxy-proxy-db-connect"}
        assert waiting == expected, scheme


def test_proxy_and_probe_do_not_depend_on_the_instance(stack_run):
    instance = stack_run.one("aws:rds/instance:Instance")
    for name in ("rds-proxy-proxy-proxy", "rds-proxy-probe-function"):
        assert not stack_run.depends_on(stack_run.named(name), instance), name


def test_component_tree(stack_run):
    root = stack_run.one("rdsproxy:index:RdsProxyStack")
    children = {r.type for r in stack_run.resources if r.parent == root.urn}
    optional = {"FlowLogs", "Rotation", "Monitoring"}  # present per config (issues 14 and 10)
    optional |= {"DrReplication"}  # a DR primary (drRegion, issue 12)
    expected = {"Networking", "Credentials", "Database", "DbUsers", "Proxy", "ProbeFunction", "Encryption"}
    assert expected <= {c.removeprefix("rdsproxy:index:") for c in children} <= expected | optional
    assert ("rdsproxy:index:DrReplication" in children) == _is_dr_primary(stack_run)
    for r in stack_run.resources:
        if r.custom:
            assert stack_run.by_urn(r.parent).type.startswith("rdsproxy:index:"), r.name


def test_stack_exports_exactly_the_documented_outputs(stack_run):
    # dev and prod are `instance` stacks without replicas or a reader endpoint: today's outputs, no others
    # (and prod, a DR primary, what its standby reads).
    assert set(stack_run.exports) == OUTPUTS | (DR_PRIMARY_OUTPUTS if _is_dr_primary(stack_run) else set())


def test_every_documented_output_is_exported_by_some_topology_and_nothing_else_is():
    from components.stack import STACK_OUTPUTS

    runs = [
        ok("dev"),
        ok("dev", dbReadReplicas=1),
        ok("dev", dbTopology="aurora", proxyReaderEndpoint=True),
        ok("dev", dbTopology="multi-az-cluster", azCount=3, proxyReaderEndpoint=True),
        ok("prod"),  # a DR primary (issue 12)
        ok("dr"),  # its standby
    ]
    exported = set().union(*(set(r.exports) for r in runs))
    assert exported == set(STACK_OUTPUTS)


def test_outputs_carry_the_deployed_values(stack_run):
    out = stack_run.exports
    proxy = stack_run.one("aws:rds/proxy:Proxy")
    db = stack_run.one("aws:rds/instance:Instance")
    assert out["proxyEndpoint"] == proxy.outputs["endpoint"]
    assert out["proxyName"] == proxy.inputs["name"]
    assert out["proxyArn"] == proxy.outputs["arn"]
    assert out["dbInstanceId"] == db.outputs["identifier"]
    assert out["dbEndpoint"] == db.outputs["address"]
    assert out["secretArn"] == stack_run.named("rds-proxy-creds-master-secret").outputs["arn"]
    assert out["probeFunctionName"] == stack_run.named("rds-proxy-probe-function").inputs["name"]
    assert out["vpcId"] == stack_run.one("aws:ec2/vpc:Vpc").id
    assert out["privateSubnetIds"] == [s.id for s in stack_run.by_type("aws:ec2/subnet:Subnet")]


def test_no_output_is_a_secret_or_holds_a_password(stack_run):
    passwords = [
        getattr(p.outputs["result"], "value", p.outputs["result"])
        for p in stack_run.by_type("random:index/randomPassword:RandomPassword")
    ]
    assert len(passwords) == 2  # the master's and the probe user's
    assert stack_run.secret_exports == set()
    for password in passwords:
        assert password not in repr(stack_run.exports)


def test_readme_diagram_is_the_one_the_plan_draws():
    from pathlib import Path

    from plan.report import mermaid

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("<!-- diagram:start -->")[1].split("<!-- diagram:end -->")[0]
    assert block.strip() == f"```mermaid\n{mermaid(ok('dev'))}\n```"


def test_proxy_and_probe_components_do_not_wait_for_the_database_either(stack_run):
    instance = stack_run.one("aws:rds/instance:Instance")
    for type_ in ("rdsproxy:index:Proxy", "rdsproxy:index:ProbeFunction"):
        assert not stack_run.depends_on(stack_run.one(type_), instance), type_


def test_a_component_dependency_counts_for_its_children():
    import pulumi

    def program():
        first = pulumi.CustomResource("test:index:Thing", "first", {})
        group = pulumi.ComponentResource(
            "test:index:Group", "group", None, pulumi.ResourceOptions(depends_on=[first])
        )
        pulumi.CustomResource("test:index:Thing", "child", {}, pulumi.ResourceOptions(parent=group))

    from plan.engine import run_program

    run = run_program("dev", {}, program=program)
    assert run.error is None
    assert run.depends_on(run.named("child"), run.named("first"))
