"""Availability Zones per region, for answering `aws.get_availability_zones` offline without inventing them.

Which AZ *names* (us-east-1a, ...) an account gets is only known in AWS: in the oldest regions AWS maps
names to physical zones per account. AZ *IDs* are the same in every account, and that is what the program
picks subnets by. So the table holds AZ IDs, and the names the plan shows for them are marked "known
after deploy".

Source: AWS Regions and Availability Zones guide, "AWS Availability Zones" (AZ ID | Region | Geography
tables), https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html,
and "AZ IDs", https://docs.aws.amazon.com/global-infrastructure/latest/regions/az-ids.html; read
2026-11-26. Only standard (opt-in-not-required) zones are listed: no Local or Wavelength Zones, which the
program filters out anyway. Only regions whose full list we could check are in the table; for any other
region the plan does not guess: it answers with placeholder zones marked invented, and says that the AZ
check was skipped (`az_check_skipped`). Re-check a region with
`aws ec2 describe-availability-zones --region R --query 'AvailabilityZones[].ZoneId'`.

RDS Proxy: "US East (N. Virginia) Region does not support RDS Proxy in the use1-az3 Availability Zone"
(RDS user guide, "Quotas and limitations for RDS Proxy",
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.html#rds-proxy.limitations, read
2026-11-26). The program excludes those IDs itself (components/networking.py); the table only records them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

AZ_IDS: Mapping[str, tuple[str, ...]] = {
    "us-east-1": ("use1-az1", "use1-az2", "use1-az3", "use1-az4", "use1-az5", "use1-az6"),
    "us-east-2": ("use2-az1", "use2-az2", "use2-az3"),
    "us-west-2": ("usw2-az1", "usw2-az2", "usw2-az3", "usw2-az4"),
    "ca-central-1": ("cac1-az1", "cac1-az2", "cac1-az4"),
    "eu-west-1": ("euw1-az1", "euw1-az2", "euw1-az3"),
    "eu-west-2": ("euw2-az1", "euw2-az2", "euw2-az3"),
    "eu-central-1": ("euc1-az1", "euc1-az2", "euc1-az3"),
    "ap-northeast-1": ("apne1-az1", "apne1-az2", "apne1-az4"),
    "ap-southeast-1": ("apse1-az1", "apse1-az2", "apse1-az3"),
    "ap-southeast-2": ("apse2-az1", "apse2-az2", "apse2-az3"),
}

RDS_PROXY_UNSUPPORTED: Mapping[str, tuple[str, ...]] = {"us-east-1": ("use1-az3",)}
"""AZ IDs where RDS Proxy places no endpoints (RDS Proxy limitations, see the module docstring)."""

PLACEHOLDER_COUNT = 6
"""Zones answered for a region not in the table: the most `azCount` allows, so the program proceeds."""


@dataclass(frozen=True)
class Zones:
    """What the offline `getAvailabilityZones` answers for one region."""

    region: str
    zone_ids: tuple[str, ...]
    names: tuple[str, ...]
    known: bool
    """False: the region is not in the table and the zones are placeholders (the AZ check is skipped)."""


def zones_for(region: str) -> Zones:
    """The region's AZ IDs from the table, or clearly invented placeholders when it is not there."""
    if region in AZ_IDS:
        ids = AZ_IDS[region]
    else:
        ids = tuple(f"{region}-unknown-az{i}" for i in range(1, PLACEHOLDER_COUNT + 1))
    # Names are per account in the oldest regions; these are stand-ins the plan marks "known after deploy".
    names = tuple(f"{region}{chr(ord('a') + i)}" for i in range(len(ids)))
    return Zones(region=region, zone_ids=ids, names=names, known=region in AZ_IDS)
