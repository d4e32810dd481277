"""`make plan`: what `pulumi up` would create for a stack, computed offline under Pulumi mocks.

    python -m plan [--stack dev] [--config key=value ...] [--format text|json|mermaid] [--diff OTHER]

Exit status: 0 clean, 1 config or program error, 2 policy violations (or a bad command line).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from plan import report
from plan.config import StackConfigError, load_stack_config, project_name
from plan.engine import ProgramRun, run_program
from policy.rules import Violation, evaluate


def _plan(stack: str, overrides: list[str]) -> tuple[ProgramRun, list[str], list[Violation]]:
    run = run_program(stack, load_stack_config(stack, overrides), project=project_name())
    if run.error is not None:
        return run, [str(run.error)], []
    resources = [
        {
            "type": r.type,
            "name": r.name,
            "inputs": report.planned_inputs(run, r),
            # for the stack-level rules (a VPC's flow log is another resource that depends on it)
            "urn": r.urn,
            "dependencies": sorted(run.waits_for(r)),
        }
        for r in run.resources
    ]
    return run, [], evaluate(resources, stack=stack)


def _pulumi_style_error(run: ProgramRun, errors: list[str]) -> str:
    """How `pulumi up` shows a program's RunError: under the stack resource, no traceback."""
    body = "\n".join("    " + line for e in errors for line in f"error: {e}".splitlines())
    return f"Diagnostics:\n  pulumi:pulumi:Stack ({project_name()}-{run.stack}):\n{body}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--config", "-c", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--format", choices=("text", "json", "mermaid"), default="text")
    parser.add_argument("--diff", metavar="OTHER_STACK", help="show what differs from OTHER_STACK's plan")
    args = parser.parse_args(argv)

    try:
        run, errors, violations = _plan(args.stack, args.config)
        other = _plan(args.diff, args.config) if args.diff else None
    except StackConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.format == "json":
        doc: dict[str, Any] = report.as_json(run, violations, errors)
        if other is not None:
            doc["diff"] = {"against": args.diff, "changes": report.diff(run, other[0])}
        print(json.dumps(doc, indent=2, sort_keys=False))
    elif errors:
        print(_pulumi_style_error(run, errors), file=sys.stderr)
    elif args.format == "mermaid":
        print(report.mermaid(run))
    elif other is not None:
        changes = report.diff(run, other[0])
        print(f"Differences between the plans of {args.stack!r} and {args.diff!r} (offline):")
        print("\n".join(changes) if changes else "  none")
    else:
        print(report.text(run, violations))
    if errors or (other is not None and other[1]):
        return 1
    return 2 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
