"""Wall time of the offline plan (`python -m plan --stack dev`) in fresh processes, imports included.

Baseline measured in the same run: a fresh interpreter that only imports pulumi and pulumi_aws, which is
the floor any plan of this program pays. Prints medians and the ratio; `--check` exits 1 above 3 s.

`--users` also plans dev with 0, 20 and 100 `dbUsers` entries and prints how plan time, the number of
resources and the deploy critical path grow with them (each user is a password, a secret, a secret
version and an auth entry; the bootstrap converges them all in one invocation).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when the median plan exceeds 3 s")
    parser.add_argument("--users", action="store_true", help="also measure growth with 0, 20, 100 dbUsers")
    args = parser.parse_args()
    plan_cmd = [sys.executable, "-m", "plan", "--stack", "dev"]
    import_cmd = [sys.executable, "-c", "import pulumi, pulumi_aws, pulumi_random"]
    wall(plan_cmd)  # warm the OS file cache and write build/ once
    plans, imports = [], []
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        plans.append(wall(plan_cmd))
        imports.append(wall(import_cmd))
    plan_s, import_s = statistics.median(plans), statistics.median(imports)
    print(
        f"plan dev stack:        median {plan_s:.2f} s  (min {min(plans):.2f}, max {max(plans):.2f}, {args.runs} runs)"
    )
    print(f"import pulumi + aws:   median {import_s:.2f} s")
    print(f"ratio plan / imports:  {plan_s / import_s:.2f}x   target: plan <= 3 s")
    if args.users:
        users_growth(max(3, args.runs // 2))
    return 1 if args.check and plan_s > 3.0 else 0


def users_growth(runs: int) -> None:
    import json

    print("dbUsers  resources  critical path  plan median  vs 0 users")
    base = None
    for n in (0, 20, 100):
        users = json.dumps([{"name": f"app_{i:03d}", "privileges": ["SELECT"]} for i in range(n)])
        cmd = [
            sys.executable,
            "-m",
            "plan",
            "--stack",
            "dev",
            "--config",
            f"dbUsers={users}",
            "--format",
            "json",
        ]
        doc = json.loads(subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout)
        times = [wall(cmd) for _ in range(runs)]
        median = statistics.median(times)
        base = base or median
        print(
            f"{n:7d}  {len(doc['resources']):9d}  {doc['critical_path_minutes']:10.0f} min"
            f"  {median:9.2f} s  {median / base:8.2f}x"
        )


if __name__ == "__main__":
    sys.exit(main())
