"""Availability Zones per region, for answering `aws.get_availability_zones` offline without inventing them.

Which AZ *names* (us-east-1a, ...) an account gets is only known in AWS: in the oldest regions AWS maps
names to physical zones per account. AZ *IDs* are the same in every account, and that is what the program
picks subnets by. So the table holds AZ IDs, and the names the plan shows for them are marked "known
after deploy".

Sources (read 2026-11-26; only what these pages state is in the table):
- us-east-1: "AWS Availability Zones" (AZ ID | Region | Geography table, use1-az1, use1-az2, use1-az3, ...),
  https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html, and
  Amazon EFS "Supported Availability Zones for One Zone file systems"
  (https://docs.aws.amazon.com/efs/latest/ug/OneZoneAZs.html: use1-az1, use1-az2, use1-az4, use1-az5,
  use1-az6; One Zone is not offered in use1-az3): six AZs, use1-az1 to use1-az6.
- us-east-2: the EFS page above (use2-az1, use2-az2, use2-az3) and "AWS Availability Zones" ("us-east-2a,
  us-east-2b, and us-east-2c are the Availability Zones in the us-east-2 Region").
- eu-west-1: "AWS Availability Zones": "euw1-az1, euw1-az2, and euw1-az3 are the AZ IDs for the
  Availability Zones in the eu-west-1 Region".
Only standard (opt-in-not-required) zones: no Local or Wavelength Zones, which the program filters out
anyway. Other regions are left out on purpose, not forgotten: their lists could not be read in full from
here. For them the plan does not guess: it answers with placeholder zones marked invented and says that
the AZ check was skipped. To add a region, take its list from AWS, e.g.
`aws ec2 describe-availability-zones --region R --query 'AvailabilityZones[].ZoneId'`, with its source.

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
    "eu-west-1": ("euw1-az1", "euw1-az2", "euw1-az3"),
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
