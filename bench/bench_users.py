"""Benchmark the users bootstrap converging N users (default 200) against bare SQL, same run.

    python bench/bench_users.py                 # table
    python bench/bench_users.py --json          # machine-readable
    python bench/bench_users.py --check         # exit 1 if a target is missed

Starts its own throw-away MariaDB with TLS (tests/integration/mariadb_server.py) and moto's
Secrets Manager in server mode on 127.0.0.1, puts one secret per user, then measures, per round
(median over rounds, handler and baseline interleaved):

* create:  ``lambda_handler`` action create from nothing (N secret reads, N CREATE USER + GRANT)
           vs bare SQL over one TLS connection: the same N ``CREATE USER ... REQUIRE SSL`` + ``GRANT``
           with the passwords already in hand.
* re-run:  action update with nothing to change (N secret reads, N TLS test logins, no statement).
* delete:  action delete (count reaches 0: N DROP USER) vs bare ``DROP USER`` of the same N.

Targets: create and re-run each finish within 10 % of the function timeout the component uses
(300 s), i.e. <= 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import ssl
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.integration.mariadb_server import HOST, start_server  # noqa: E402
from tests.integration.users_support import (  # noqa: E402
    APP_DB,
    MASTER_PASSWORD,
    MASTER_USER,
    LocalSecrets,
    prepare_master,
    reset_bootstrap_state,
    users_env,
    users_function,
)

FUNCTION_TIMEOUT_S = 300.0
TARGET_S = FUNCTION_TIMEOUT_S * 0.10


class Context:
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return int(FUNCTION_TIMEOUT_S * 1000)


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200, help="users to converge")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    server = start_server(max_connections=60)
    store = LocalSecrets()
    samples: dict[str, list[float]] = {
        k: [] for k in ("create", "bare_create", "rerun", "delete", "bare_drop")
    }
    try:
        os.environ.update(users_env(server, store))
        master_arn = prepare_master(server, store)
        names = [f"bench_user_{i:03d}" for i in range(args.users)]
        passwords = {n: f"Bench-{n}-pw" for n in names}
        users = [
            {
                "name": n,
                "privileges": ["SELECT", "INSERT"] if i % 2 else ["SELECT"],
                "database": APP_DB,
                "auth": "password",
                "secret_arn": store.user_secret(n, passwords[n], server.port),
            }
            for i, n in enumerate(names)
        ]
        ctx = ssl.create_default_context(cafile=server.ca_path)

        def event(action: str) -> dict[str, Any]:
            return {
                "master_secret_arn": master_arn,
                "users": users,
                "tf": {"action": action, "prev_input": None},
            }

        def bare(statements: list[tuple[str, tuple[Any, ...]]]) -> None:
            conn = pymysql.connect(
                host=HOST,
                port=server.port,
                user=MASTER_USER,
                password=MASTER_PASSWORD,
                ssl=ctx,
                autocommit=True,
            )
            with conn.cursor() as cur:
                for sql, params in statements:
                    cur.execute(sql, params)
            conn.close()

        bare_create = []
        for u in users:
            bare_create.append(
                ("CREATE USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (u["name"], passwords[u["name"]]))
            )
            bare_create.append(
                (f"GRANT {', '.join(u['privileges'])} ON `{APP_DB}`.* TO %s@'%%'", (u["name"],))
            )
        bare_drop = [("DROP USER %s@'%%'", (n,)) for n in names]

        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            for _ in range(args.rounds):
                reset_bootstrap_state(server)
                samples["bare_create"].append(_timed(lambda: bare(bare_create)))
                samples["bare_drop"].append(_timed(lambda: bare(bare_drop)))
                users_function.reset_state()  # a new container each round
                samples["create"].append(
                    _timed(lambda: users_function.lambda_handler(event("create"), Context()))
                )
                result = users_function.lambda_handler(event("update"), Context())
                assert len(result["left_alone"]) == args.users, result
                samples["rerun"].append(
                    _timed(lambda: users_function.lambda_handler(event("update"), Context()))
                )
                samples["delete"].append(
                    _timed(lambda: users_function.lambda_handler(event("delete"), Context()))
                )
    finally:
        store.stop()
        server.stop()
        shutil.rmtree(server.basedir, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in samples.items()}
    result_json: dict[str, Any] = {
        "users": args.users,
        "rounds": args.rounds,
        "seconds": med,
        "ratios": {"create": med["create"] / med["bare_create"], "delete": med["delete"] / med["bare_drop"]},
        "function_timeout_s": FUNCTION_TIMEOUT_S,
        "target_s": TARGET_S,
        "python": sys.version.split()[0],
    }
    checks = {"create": med["create"] <= TARGET_S, "rerun": med["rerun"] <= TARGET_S}
    result_json["pass"] = checks
    if args.json:
        print(json.dumps(result_json, indent=2))
    else:
        table = Table(
            title=f"users bootstrap, {args.users} users, MariaDB on {HOST} over TLS (median of {args.rounds})"
        )
        for col in ("run", "handler", "bare SQL", "ratio", "of 300 s timeout"):
            table.add_column(col, justify="right" if col != "run" else "left")
        table.add_row(
            "create from nothing",
            f"{med['create']:.2f} s",
            f"{med['bare_create']:.2f} s",
            f"{result_json['ratios']['create']:.1f}x",
            f"{med['create'] / FUNCTION_TIMEOUT_S:.1%}",
        )
        table.add_row(
            "re-run (no-op)", f"{med['rerun']:.2f} s", "", "", f"{med['rerun'] / FUNCTION_TIMEOUT_S:.1%}"
        )
        table.add_row(
            "delete (drop all)",
            f"{med['delete']:.2f} s",
            f"{med['bare_drop']:.2f} s",
            f"{result_json['ratios']['delete']:.1f}x",
            f"{med['delete'] / FUNCTION_TIMEOUT_S:.1%}",
        )
        Console().print(table)
        print(
            f"targets: create and re-run <= {TARGET_S:.0f} s: "
            + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in checks.items())
        )
    return 1 if args.check and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
