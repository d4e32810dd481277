"""Entry point of `pulumi up`: read and validate config once, build one RdsProxyStack, export its outputs."""

import pulumi

from components.settings import Settings
from components.stack import RdsProxyStack, RdsProxyStackArgs

settings = Settings.from_config(pulumi.Config(), pulumi.get_project(), pulumi.get_stack())
stack = RdsProxyStack("rds-proxy", RdsProxyStackArgs(settings=settings))
for key, value in stack.outputs.items():
    pulumi.export(key, value)
