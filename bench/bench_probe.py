"""Benchmark the probe handler against bare pymysql on a local MariaDB with TLS (password mode).

    python bench/bench_probe.py            # table
    python bench/bench_probe.py --json     # machine-readable
    python bench/bench_probe.py --check    # exit 1 if a target is missed

It starts its own throw-away MariaDB (same code as the integration tests:
tests/integration/mariadb_server.py; needs the Debian package mariadb-server) on 127.0.0.1 and
measures, interleaving handler and baseline so drift hits both alike:

* warm:  ``lambda_handler({})`` on the kept connection vs ``cursor.execute + fetchone`` of the
         same query on an open TLS connection.                         target <= 1.5x
* fresh: ``lambda_handler({"fresh": true})`` (close the kept connection, TLS connect, auth,
         query) vs bare ``pymysql.connect(ssl=<reused SSLContext>)`` + query + close.  <= 1.3x
* cold:  ``import lambda_function`` in a new interpreter (``-S -B``) from a copy of what the
         Lambda zip holds (handler + pymysql, no .pyc files, bytecode writing off, as on
         Lambda's read-only /var/task; no site-packages).               target <= 150 ms
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(LAMBDA_SRC))

import lambda_function  # noqa: E402
import pymysql  # noqa: E402

from tests.integration.mariadb_server import HOST, PROBE_DB, PROBE_PASSWORD, PROBE_USER, start_server  # noqa: E402

TARGETS = {"warm_ratio": 1.5, "fresh_ratio": 1.3, "cold_import_ms": 150.0}


class Context:
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def _time(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_warm(port: int, ctx: ssl.SSLContext, n: int) -> dict[str, float]:
    bare = pymysql.connect(
        host=HOST, port=port, user=PROBE_USER, password=PROBE_PASSWORD, database=PROBE_DB, ssl=ctx
    )

    def bare_query() -> None:
        with bare.cursor() as cur:
            cur.execute(lambda_function.QUERY)
            cur.fetchone()

    def handler_warm() -> None:
        resp = lambda_function.lambda_handler({}, Context())
        assert resp["statusCode"] == 200, resp

    lambda_function.reset_state()
    handler_warm()  # connect once
    for _ in range(50):  # warm-up
        bare_query()
        handler_warm()
    b: list[float] = []
    h: list[float] = []
    for _ in range(n):
        b.append(_time(bare_query))
        h.append(_time(handler_warm))
    bare.close()
    return {"bare_ms": _median_ms(b), "handler_ms": _median_ms(h)}


def bench_fresh(port: int, ctx: ssl.SSLContext, n: int) -> dict[str, float]:
    def bare_connect() -> None:
        conn = pymysql.connect(
            host=HOST,
            port=port,
            user=PROBE_USER,
            password=PROBE_PASSWORD,
            database=PROBE_DB,
            ssl=ctx,
            autocommit=True,
            charset="utf8mb4",
        )
        with conn.cursor() as cur:
            cur.execute(lambda_function.QUERY)
            cur.fetchone()
        conn.close()

    def handler_fresh() -> None:
        resp = lambda_function.lambda_handler({"fresh": True}, Context())
        assert resp["statusCode"] == 200, resp

    lambda_function.reset_state()
    for _ in range(10):
        bare_connect()
        handler_fresh()
    b: list[float] = []
    h: list[float] = []
    for _ in range(n):
        b.append(_time(bare_connect))
        h.append(_time(handler_fresh))
    return {"bare_ms": _median_ms(b), "handler_ms": _median_ms(h)}


def bench_cold_import(runs: int) -> dict[str, float]:
    """Import time of the handler in a new interpreter, from a .pyc-free copy of the zip's content."""
    code = (
        "import time; t0 = time.perf_counter(); import lambda_function; "
        "print((time.perf_counter() - t0) * 1000)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="probe-zip-") as tmp:
        task = Path(tmp)
        for src in LAMBDA_SRC.glob("*.py"):
            shutil.copy(src, task / src.name)
        shutil.copytree(
            Path(pymysql.__file__).parent, task / "pymysql", ignore=shutil.ignore_patterns("__pycache__")
        )
        for label in ("cold_import_ms", "cold_import_cached_pyc_ms"):
            if label == "cold_import_cached_pyc_ms":  # second pass: with .pyc files present
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(task)], check=True)
            samples = []
            for _ in range(runs):
                out = subprocess.run(
                    # -S: no site-packages, so only the zip's content is importable (pymysql
                    # must not pick up this venv's `cryptography`, which Lambda doesn't have).
                    [sys.executable, "-S", "-B", "-c", code],
                    cwd=task,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                samples.append(float(out.strip().splitlines()[-1]))
            results[label] = statistics.median(samples)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm", type=int, default=3000, help="warm invocations (and bare queries)")
    parser.add_argument("--fresh", type=int, default=300, help="fresh invocations (and bare connects)")
    parser.add_argument("--cold", type=int, default=15, help="cold-import runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    server = start_server()
    try:
        for k, v in server.probe_env().items():
            os.environ[k] = v
        ctx = ssl.create_default_context(cafile=server.ca_path)
        # The handler's log line goes to stdout, as on Lambda; send it to /dev/null here.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            warm = bench_warm(server.port, ctx, args.warm)
            fresh = bench_fresh(server.port, ctx, args.fresh)
        lambda_function.reset_state()
    finally:
        server.stop()
        shutil.rmtree(server.basedir, ignore_errors=True)
    cold = bench_cold_import(args.cold)

    result: dict[str, Any] = {
        "warm": {**warm, "ratio": warm["handler_ms"] / warm["bare_ms"], "n": args.warm},
        "fresh": {**fresh, "ratio": fresh["handler_ms"] / fresh["bare_ms"], "n": args.fresh},
        "cold": {**cold, "n": args.cold},
        "targets": TARGETS,
        "python": sys.version.split()[0],
        "pymysql": importlib.metadata.version("PyMySQL"),
    }
    checks = {
        "warm": result["warm"]["ratio"] <= TARGETS["warm_ratio"],
        "fresh": result["fresh"]["ratio"] <= TARGETS["fresh_ratio"],
        "cold": cold["cold_import_ms"] <= TARGETS["cold_import_ms"],
    }
    result["pass"] = checks

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        out = io.StringIO()
        w, f = result["warm"], result["fresh"]
        mark = {True: "ok", False: "MISSED"}
        out.write(f"probe benchmark (password mode, TLS, MariaDB on {HOST}; medians)\n")
        out.write(
            f"  warm   handler {w['handler_ms']:8.3f} ms  vs bare query    {w['bare_ms']:8.3f} ms"
            f"  ratio {w['ratio']:.2f}x  (target <= {TARGETS['warm_ratio']}x) {mark[checks['warm']]}\n"
        )
        out.write(
            f"  fresh  handler {f['handler_ms']:8.3f} ms  vs bare connect  {f['bare_ms']:8.3f} ms"
            f"  ratio {f['ratio']:.2f}x  (target <= {TARGETS['fresh_ratio']}x) {mark[checks['fresh']]}\n"
        )
        out.write(
            f"  cold   import lambda_function {cold['cold_import_ms']:8.1f} ms without .pyc"
            f" (target <= {TARGETS['cold_import_ms']:.0f} ms) {mark[checks['cold']]};"
            f" {cold['cold_import_cached_pyc_ms']:.1f} ms with .pyc\n"
        )
        print(out.getvalue(), end="")
    return 1 if args.check and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
