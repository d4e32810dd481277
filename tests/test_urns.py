"""No deployed resource moves: every URN of the committed dev and prod stacks still exists, or its successor
carries a pulumi.Alias for it. A changed URN makes `pulumi up` delete and recreate the resource: for the
database that is a new, empty database; for the proxy role an outage; for the secret a new password."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from plan.engine import run_program
from tests.conftest import ok

DEPLOYED = json.loads((Path(__file__).resolve().parent / "deployed_urns.json").read_text())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_deployed_urn_survives_or_is_aliased(stack):
    run = ok(stack)
    answered = {run.real_urn(r) for r in run.resources}
    for r in run.resources:
        answered |= run.alias_urns(r)
    missing = [urn for urn in DEPLOYED[stack] if urn not in answered]
    assert missing == [], "URNs that would be deleted and recreated on the next `pulumi up`"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_two_resources_claim_the_same_deployed_urn(stack):
    run = ok(stack)
    claims: dict[str, list[str]] = {}
    for r in run.resources:
        for urn in {run.real_urn(r)} | run.alias_urns(r):
            claims.setdefault(urn, []).append(r.name)
    assert {u: n for u, n in claims.items() if len(n) > 1} == {}


def test_real_urns_chain_every_ancestor_type_and_resolve_aliases():
    def program():
        outer = pulumi.ComponentResource("test:index:Outer", "outer")
        inner = pulumi.ComponentResource(
            "test:index:Inner", "inner", None, pulumi.ResourceOptions(parent=outer)
        )
        pulumi.CustomResource("test:index:Thing", "thing", {}, pulumi.ResourceOptions(parent=inner))
        pulumi.CustomResource(
            "test:index:Thing",
            "moved",
            {},
            pulumi.ResourceOptions(parent=outer, aliases=[pulumi.Alias(name="old", parent=inner)]),
        )

    run = run_program("dev", {}, program=program)
    assert run.error is None
    assert run.real_urn(run.named("thing")) == (
        "urn:pulumi:dev::rds-proxy::test:index:Outer$test:index:Inner$test:index:Thing::thing"
    )
    assert run.alias_urns(run.named("moved")) == {
        "urn:pulumi:dev::rds-proxy::test:index:Outer$test:index:Inner$test:index:Thing::old"
    }
