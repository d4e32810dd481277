"""`make plan`: what `pulumi up` would create for a stack, and what it costs, computed offline under Pulumi mocks.

    python -m plan [--stack dev] [--config key=value ...] [--format text|json|mermaid] [--diff OTHER]

Exit status: 0 clean; 1 config, program or usage error (a broken or missing stack file, a value the CLI's
type check refuses, the program's own validation, a bad command line); 2 policy violations.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

from plan import costs, report
from plan.config import StackConfigError, cli_config_error, load_stack_config, project_name
from plan.engine import ProgramRun, run_program
from policy.rules import Violation, evaluate

EXIT_OK, EXIT_ERROR, EXIT_POLICY = 0, 1, 2


@dataclass
class Planned:
    """One stack's plan: the run, what stopped it, what the policy pack says, what it costs."""

    run: ProgramRun
    errors: list[str]
    violations: list[Violation] = field(default_factory=list)
    estimate: costs.Estimate | None = None
    before_program: bool = False
    """The CLI refused the config before running the program (it prints a bare `error:` line then)."""


def _plan(stack: str, overrides: list[str]) -> Planned:
    config = load_stack_config(stack, overrides)
    type_error = cli_config_error(stack, overrides)
    if type_error is not None:
        # `pulumi up` stops here, before the program runs; nothing is declared.
        empty = ProgramRun(stack, [], [], {}, set(), {})
        return Planned(empty, [type_error], before_program=True)
    run = run_program(stack, config, project=project_name())
    if run.error is not None:
        return Planned(run, [str(run.error)])
    resources = report.policy_resources(run)
    return Planned(run, [], evaluate(resources, stack=stack), costs.for_run(run, config.get("aws:region")))


def _diagnostics(planned: Planned, *, errors: bool) -> str:
    """The CLI's Diagnostics block: the program's warnings (and its error) under the stack resource."""
    lines = [f"warning: {w}" for w in planned.run.warnings]
    if errors:
        lines += [f"error: {e}" for e in planned.errors]
    body = "\n".join("    " + line for entry in lines for line in entry.splitlines())
    return f"  pulumi:pulumi:Stack ({project_name()}-{planned.run.stack}):\n{body}\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A bad command line is a usage error: exit 1 like every other error, not argparse's 2 (policy)."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="make plan", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--config", "-c", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--format", choices=("text", "json", "mermaid"), default="text")
    parser.add_argument("--diff", metavar="OTHER_STACK", help="show what differs from OTHER_STACK's plan")
    args = parser.parse_args(argv)

    try:
        planned = _plan(args.stack, args.config)
        other = _plan(args.diff, args.config) if args.diff else None
    except StackConfigError as exc:
        if args.format == "json":
            print(json.dumps({"stack": args.stack, "errors": [str(exc)]}, indent=2))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR

    run, errors, violations = planned.run, planned.errors, planned.violations
    if args.format == "json":
        doc: dict[str, Any] = report.as_json(run, violations, errors, planned.estimate)
        if other is not None:
            doc["diff"] = {
                "against": args.diff,
                "changes": report.diff(run, other.run),
                "monthly_cost_change_usd": report.cost_change(planned.estimate, other.estimate),
            }
        print(json.dumps(doc, indent=2, sort_keys=False))
    elif planned.before_program:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
    elif errors:
        print("Diagnostics:\n" + _diagnostics(planned, errors=True), file=sys.stderr)
    elif args.format == "mermaid":
        print(report.mermaid(run))
    elif other is not None:
        changes = report.diff(run, other.run)
        print(f"Differences between the plans of {args.stack!r} and {args.diff!r} (offline):")
        print("\n".join(changes) if changes else "  none")
        print("\n".join(report.cost_diff_lines(planned.estimate, other.estimate, args.stack, args.diff)))
    else:
        text = report.text(run, violations)
        if run.warnings:
            text += "\n\nWarnings:\n" + _diagnostics(planned, errors=False).rstrip("\n")
        if run.notes:
            text += "\n\nNotes:\n" + "\n".join(f"  {n}" for n in run.notes)
        if planned.estimate is not None:
            text += "\n\n" + costs.text(planned.estimate)
        print(text)
    if errors or (other is not None and other.errors):
        return EXIT_ERROR
    return EXIT_POLICY if violations else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
