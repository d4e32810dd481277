"""A throw-away MariaDB server with TLS for the probe's integration tests and benchmark.

Used by ``tests/integration/conftest.py`` (session fixture) and ``bench/bench_probe.py``.
Everything lives in one temporary directory:

* a test CA, a server certificate signed by it (SAN: ``localhost``, ``127.0.0.1``) and an
  unrelated second CA (``other-ca.pem``) for the "untrusted CA" case;
* a datadir made by ``mariadb-install-db``;
* ``mariadbd`` listening on a free port on 127.0.0.1 **and** 127.0.0.2 (both loopback;
  127.0.0.2 is *not* in the certificate, so hostname verification can be tested), with
  ``--require-secure-transport=ON`` and its own unix socket (the admin connection uses
  the socket as root, which MariaDB counts as secure transport).

Nothing here talks to anything but the loopback interface.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
#: Second loopback address the server also listens on; deliberately absent from the cert.
ALT_HOST = "127.0.0.2"

PROBE_USER = "probe"
PROBE_PASSWORD = "probe-test-password"
PROBE_DB = "probe"
IAM_USER = "iam_probe"


class MariaDBMissing(RuntimeError):
    """The MariaDB server binaries are not installed (apt-get install mariadb-server)."""


def _which(*names: str) -> str:
    extra = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/usr/bin"])
    path = os.environ.get("PATH", "") + os.pathsep + extra
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise MariaDBMissing(
        f"none of {names} found on PATH: install the Debian package 'mariadb-server' "
        "(apt-get install -y mariadb-server); .ci/run does this in CI"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_port_on(*hosts: str) -> int:
    """A port free on every one of ``hosts`` (two servers on one port, different loopback addresses)."""
    for _ in range(50):
        port = free_port()
        try:
            for host in hosts:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


# --------------------------------------------------------------------------- certificates


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    dns_names: list[str],
    ips: list[str],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


# --------------------------------------------------------------------------- server


@dataclass
class MariaDBServer:
    """One mariadbd process in ``basedir``; ``start()``/``stop()``/``restart()`` are idempotent-ish."""

    basedir: Path
    port: int = field(default_factory=free_port)
    max_connections: int = 40
    proc: subprocess.Popen[bytes] | None = None
    _short_socket_dir: str | None = None
    #: Addresses to listen on; the first is the one clients (and the certificate) use.
    bind_hosts: tuple[str, ...] = (HOST, ALT_HOST)
    #: Extra names in the server certificate (besides ``localhost`` and the first bind address).
    extra_cert_names: tuple[str, ...] = ()
    #: Reuse another server's CA (cert, key), so one DB_CA_BUNDLE trusts both (replication pairs).
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
    #: Binary log on (a replication primary); off by default, as before.
    log_bin: bool = False
    #: More mariadbd options, e.g. ``--server-id=2``, ``--read-only=ON``.
    extra_args: tuple[str, ...] = ()
    #: Copy this freshly initialised (never started) datadir instead of running mariadb-install-db
    #: again: ~0.4 s instead of ~4 s for the second server of a pair.
    datadir_from: Path | None = None

    # paths -----------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        return self.basedir / "data"

    @property
    def socket_path(self) -> str:
        path = str(self.basedir / "mysqld.sock")
        if len(path) > 100:  # unix socket paths are limited to ~108 bytes
            if self._short_socket_dir is None:
                self._short_socket_dir = tempfile.mkdtemp(prefix="mdb-")
            path = os.path.join(self._short_socket_dir, "mysqld.sock")
        return path

    @property
    def ca_path(self) -> str:
        return str(self.basedir / "ca.pem")

    @property
    def other_ca_path(self) -> str:
        return str(self.basedir / "other-ca.pem")

    @property
    def log_path(self) -> Path:
        return self.basedir / "mariadbd.err"

    # setup -----------------------------------------------------------------
    def prepare(self) -> None:
        """Generate the CAs and certificates, and initialise the datadir."""
        self.basedir.mkdir(parents=True, exist_ok=True)
        if self.ca is None:
            self.ca = make_ca("probe-test-ca")
        ca_cert, ca_key = self.ca
        _write_cert(self.basedir / "ca.pem", ca_cert)
        srv_cert, srv_key = make_server_cert(
            ca_cert, ca_key, ["localhost", *self.extra_cert_names], [self.bind_hosts[0]]
        )
        _write_cert(self.basedir / "server-cert.pem", srv_cert)
        _write_key(self.basedir / "server-key.pem", srv_key)
        other_cert, _ = make_ca("untrusted-other-ca")
        _write_cert(self.basedir / "other-ca.pem", other_cert)

        if self.datadir_from is not None:
            shutil.copytree(self.datadir_from, self.datadir)
            return
        install = _which("mariadb-install-db", "mysql_install_db")
        cmd = [
            install,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")

    def _command(self) -> list[str]:
        mariadbd = _which("mariadbd", "mysqld")
        cmd = [
            mariadbd,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            f"--bind-address={','.join(self.bind_hosts)}",
            f"--pid-file={self.basedir / 'mysqld.pid'}",
            f"--log-error={self.log_path}",
            f"--ssl-ca={self.basedir / 'ca.pem'}",
            f"--ssl-cert={self.basedir / 'server-cert.pem'}",
            f"--ssl-key={self.basedir / 'server-key.pem'}",
            "--require-secure-transport=ON",
            f"--max-connections={self.max_connections}",
            "--skip-name-resolve",
            "--performance-schema=OFF",
            "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            f"--log-bin={self.datadir / 'mysql-bin'}" if self.log_bin else "--skip-log-bin",
            "--max-allowed-packet=16M",
            *self.extra_args,
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        return cmd

    def start(self, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                self.admin().close()
                return
            except pymysql.err.MySQLError as exc:
                last = exc
                time.sleep(0.05)
        raise RuntimeError(f"mariadbd did not come up in {timeout}s ({last}):\n{self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM = clean shutdown
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no error log)"

    # clients ---------------------------------------------------------------
    def admin(self) -> pymysql.connections.Connection:
        """Root over the unix socket (counts as secure transport; no TLS needed)."""
        return pymysql.connect(
            unix_socket=self.socket_path,
            user="root",
            password="",
            autocommit=True,
            connect_timeout=2,
            read_timeout=10,
            write_timeout=10,
            ssl_disabled=True,
        )

    def execute(self, sql: str, args: object = None) -> list[tuple[object, ...]]:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def create_users(self) -> None:
        """The probe's password user, the IAM user (password set per test) and the database."""
        self.execute(f"CREATE DATABASE IF NOT EXISTS `{PROBE_DB}`")
        self.execute(f"CREATE OR REPLACE USER '{PROBE_USER}'@'%%' IDENTIFIED BY %s", (PROBE_PASSWORD,))
        self.execute(f"GRANT ALL ON `{PROBE_DB}`.* TO '{PROBE_USER}'@'%'")
        self.execute(f"CREATE OR REPLACE USER '{IAM_USER}'@'%' ACCOUNT LOCK")
        self.execute(f"GRANT ALL ON `{PROBE_DB}`.* TO '{IAM_USER}'@'%'")

    def set_iam_password(self, token: str) -> None:
        """Make ``token`` the IAM user's password (what IAM auth checks in RDS)."""
        self.execute(f"ALTER USER '{IAM_USER}'@'%%' IDENTIFIED BY %s ACCOUNT UNLOCK", (token,))

    def connection_ids(self, user: str = PROBE_USER) -> set[int]:
        rows = self.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
        return {int(r[0]) for r in rows}  # type: ignore[call-overload]

    def probe_env(self, **overrides: str) -> dict[str, str]:
        """Environment for the handler in password mode against this server."""
        env = {
            "PROXY_ENDPOINT": HOST,
            "DB_PORT": str(self.port),
            "DB_USER": PROBE_USER,
            "DB_NAME": PROBE_DB,
            "DB_AUTH": "password",
            "DB_PASSWORD": PROBE_PASSWORD,
            "DB_CA_BUNDLE": self.ca_path,
        }
        env.update(overrides)
        return env


def start_server(basedir: str | Path | None = None, **kwargs: object) -> MariaDBServer:
    """Prepare and start a server (with users) in ``basedir`` (a new temp dir if None)."""
    if basedir is None:
        basedir = tempfile.mkdtemp(prefix="probe-mariadb-")
    server = MariaDBServer(basedir=Path(basedir), **kwargs)  # type: ignore[arg-type]
    server.prepare()
    server.start()
    try:
        server.create_users()
    except BaseException:
        server.stop()
        raise
    return server
