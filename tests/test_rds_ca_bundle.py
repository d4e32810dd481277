"""The RDS CA bundle shipped with the users bootstrap (it logs in to the database directly and verifies the
database's certificate, which the RDS CA issues: no public root covers it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

BUNDLE = Path(__file__).resolve().parent.parent / "lambda_src" / "rds-global-bundle.pem"


def _certs() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(BUNDLE.read_bytes())


def test_the_bundle_holds_the_current_rds_root_cas_of_the_regions_we_deploy_to():
    subjects = {c.subject.rfc4514_string() for c in _certs()}
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1"):
        for kind in ("RSA2048", "RSA4096", "ECC384"):
            assert any(f"Amazon RDS {region} Root CA {kind} G1" in s for s in subjects), (region, kind)


def test_every_current_region_root_is_a_ca_valid_well_beyond_today():
    # The G1 roots (RSA2048, RSA4096, ECC384) RDS uses since 2024; the bundle's older per-region roots have
    # expired and are harmless.
    roots = [c for c in _certs() if "Root CA" in (s := c.subject.rfc4514_string()) and " G1" in s]
    assert len(roots) >= 30
    for cert in roots:
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_after_utc > dt.datetime(2030, 1, 1, tzinfo=dt.UTC), cert.subject


def test_the_users_function_ships_it_and_points_db_ca_bundle_at_it():
    import io
    import zipfile

    from tests.conftest import ok

    run = ok("dev")
    fn = next(
        f for f in run.by_type("aws:lambda/function:Function") if f.inputs["handler"].startswith("users_")
    )
    assert fn.inputs["environment"]["variables"]["DB_CA_BUNDLE"] == "/var/task/rds-global-bundle.pem"
    names = zipfile.ZipFile(io.BytesIO(Path(fn.inputs["code"].path).read_bytes())).namelist()
    assert "rds-global-bundle.pem" in names and "users_function.py" in names
    assert run.warnings == []
