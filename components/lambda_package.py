"""Reproducible Lambda packages: the handler modules at the zip's root, pure-Python dependencies beside them.

Byte-for-byte reproducible (sorted entries, fixed timestamps and modes), so `source_code_hash` changes only
when the code does and `pulumi up` doesn't redeploy an unchanged function. Any function of the stack uses
it unchanged: `write_package("probe", ["lambda_function.py"])`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pymysql

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"
BUILD_DIR = ROOT / "build"
RUNTIME = "python3.12"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
VENDORED: tuple[ModuleType, ...] = (pymysql,)
"""Pure-Python packages shipped in every package, from this venv (pinned in requirements.txt), so they run
on any Lambda architecture. boto3 is already in the Lambda runtime and is not shipped."""


def _package_files(modules: Sequence[str], source_dir: Path) -> list[tuple[str, Path]]:
    """(path in zip, file on disk): the handler's modules at the root, vendored packages beside them."""
    files = [(name, source_dir / name) for name in modules]
    for package in VENDORED:
        package_dir = Path(str(package.__file__)).parent
        files += [
            (f"{package_dir.name}/{p.relative_to(package_dir).as_posix()}", p)
            for p in package_dir.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    return sorted(files)


def build_package(modules: Sequence[str], source_dir: Path = LAMBDA_SRC) -> bytes:
    """The zip of `modules` (file names in `source_dir`) plus the vendored packages."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in _package_files(modules, source_dir):
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def write_package(
    name: str, modules: Sequence[str], source_dir: Path = LAMBDA_SRC, build_dir: Path = BUILD_DIR
) -> tuple[Path, str]:
    """Write the zip under build/ (named by content) and return it with its base64 SHA-256."""
    data = build_package(modules, source_dir)
    digest = hashlib.sha256(data).digest()
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"{name}-{digest.hex()[:16]}.zip"
    if not path.exists():
        path.write_bytes(data)
    return path, base64.b64encode(digest).decode()
