"""Entry point of `pulumi up`: read and validate config once, build one RdsProxyStack, export its outputs.

A DR standby (`drPrimaryStack`) also reads its primary's outputs here, from the primary's stack state through
a StackReference (no call to the primary's region); the stack gets them as data."""

import pulumi

from components.dr import DrStandbySettings, PrimaryStack
from components.settings import Settings
from components.stack import RdsProxyStack, RdsProxyStackArgs

settings = Settings.from_config(
    pulumi.Config(), pulumi.get_project(), pulumi.get_stack(), region=pulumi.Config("aws").get("region")
)
primary = None
if isinstance(settings.dr, DrStandbySettings):
    reference = pulumi.StackReference("dr-primary", stack_name=settings.dr.primary_stack)
    primary = PrimaryStack.from_reference(reference, settings.dr)
stack = RdsProxyStack("rds-proxy", RdsProxyStackArgs(settings=settings, primary=primary))
for key, value in stack.outputs.items():
    pulumi.export(key, value)
