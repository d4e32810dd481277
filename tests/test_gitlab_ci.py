"""`.gitlab-ci.yml`: valid against GitLab's CI schema (offline), and the pipeline does what we promise.

The structural checks don't grep the YAML: they resolve `extends`, evaluate each job's `rules:if`
for concrete pipelines (merge request with/without credentials, push to the default branch, ...)
and look at what would run. Each check is a function returning its problems, and the mutation
tests at the end break the real file in the way each check guards against, so a check that stops
catching its regression fails here too.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CI_FILE = ROOT / ".gitlab-ci.yml"
KEYWORDS = {
    "default", "include", "stages", "variables", "workflow", "image", "services", "cache",
    "before_script", "after_script", "spec",
}  # fmt: skip
STACKS = sorted({"dev", "prod"} | {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")})


def load() -> dict[str, Any]:
    data = yaml.safe_load(CI_FILE.read_text())
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------------------------------
# Schema validation (check-jsonschema's vendored copy of GitLab's ci.json: no network)
# --------------------------------------------------------------------------------------------------

SCHEMA_ARGS = [
    "--builtin-schema",
    "vendor.gitlab-ci",
    "--data-transform",
    "gitlab-ci",
    "--regex-variant",
    "nonunicode",
]


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # Any download attempt goes to a dead proxy and fails, so passing proves the schema is bundled.
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *SCHEMA_ARGS, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_schema_is_bundled_with_check_jsonschema() -> None:
    import check_jsonschema

    vendored = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "gitlab-ci.json"
    assert vendored.is_file() and vendored.stat().st_size > 10_000


def test_gitlab_ci_matches_gitlab_schema() -> None:
    result = check_jsonschema(CI_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_pipeline(tmp_path: Path) -> None:
    """The validation isn't a no-op: a typo'd keyword and a bad `when` are caught."""
    broken = load()
    broken["deploy:prod"]["rules"][0]["when"] = "sometimes"
    broken["test"]["scirpt"] = broken["test"].pop("script")
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(yaml.safe_dump(broken))
    result = check_jsonschema(path)
    assert result.returncode != 0, result.stdout


# --------------------------------------------------------------------------------------------------
# A small model of GitLab: extends, variables, rules:if
# --------------------------------------------------------------------------------------------------


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """GitLab's `extends` merge: hashes deep-merged, everything else (lists too) replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(config: Mapping[str, Any], name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    assert name not in seen, f"extends cycle: {seen}"
    job = config[name]
    parents = job.get("extends", [])
    parents = [parents] if isinstance(parents, str) else parents
    merged: dict[str, Any] = {}
    for parent in parents:
        merged = _merge(merged, resolve(config, parent, (*seen, name)))
    merged = _merge(merged, {k: v for k, v in job.items() if k != "extends"})
    return merged


def jobs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Visible jobs, fully resolved, with `default:` applied and variables expanded in scripts."""
    default = config.get("default", {})
    out = {}
    for name in config:
        if name in KEYWORDS or name.startswith("."):
            continue
        job = _merge(default, resolve(config, name))
        variables = {**config.get("variables", {}), **job.get("variables", {})}
        job["variables"] = variables
        job["commands"] = [
            _expand(line, variables)
            for key in ("before_script", "script")
            for line in _lines(job.get(key, []))
        ]
        image = job.get("image")
        job["image_name"] = _expand(
            image["name"] if isinstance(image, Mapping) else str(image or ""), variables
        )
        out[name] = job
    return out


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [line for item in value for line in _lines(item)]


def _expand(text: str, variables: Mapping[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return str(variables[name]) if name in variables else m.group(0)

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)


_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||==|!=|=~|!~|\$\w+|\"[^\"]*\"|'[^']*'|/(?:\\/|[^/])*/|null)")


def evaluate_if(expression: str, env: Mapping[str, str]) -> bool:
    """GitLab `rules:if` semantics for what we use: $VAR, ==, !=, =~, !~, null, &&, ||, ()."""
    tokens: list[str] = []
    pos = 0
    while pos < len(expression):
        if expression[pos:].strip() == "":
            break
        m = _TOKEN.match(expression, pos)
        assert m, f"can't parse rules:if at {expression[pos:]!r}"
        tokens.append(m.group(1))
        pos = m.end()

    def value(tok: str) -> str | None:
        if tok.startswith("$"):
            return env.get(tok[1:])
        if tok == "null":
            return None
        return tok[1:-1]

    def parse_or(i: int) -> tuple[bool, int]:
        left, i = parse_and(i)
        while i < len(tokens) and tokens[i] == "||":
            right, i = parse_and(i + 1)
            left = left or right
        return left, i

    def parse_and(i: int) -> tuple[bool, int]:
        left, i = parse_atom(i)
        while i < len(tokens) and tokens[i] == "&&":
            right, i = parse_atom(i + 1)
            left = left and right
        return left, i

    def parse_atom(i: int) -> tuple[bool, int]:
        if tokens[i] == "(":
            result, i = parse_or(i + 1)
            assert tokens[i] == ")"
            return result, i + 1
        left = value(tokens[i])
        if i + 1 < len(tokens) and tokens[i + 1] in ("==", "!=", "=~", "!~"):
            op, rtok = tokens[i + 1], tokens[i + 2]
            if op in ("==", "!="):
                equal = left == value(rtok)
                return (equal if op == "==" else not equal), i + 3
            pattern = rtok[1:-1] if rtok.startswith("/") else (value(rtok) or "")
            found = left is not None and re.search(pattern, left) is not None
            return (found if op == "=~" else not found), i + 3
        return bool(left), i + 1

    result, end = parse_or(0)
    assert end == len(tokens), f"trailing tokens in {expression!r}"
    return result


def pipeline_runs(config: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    rules = config.get("workflow", {}).get("rules")
    if not rules:
        return True
    for rule in rules:
        assert set(rule) <= {"if", "when", "variables", "auto_cancel"}, rule
        if "if" not in rule or evaluate_if(rule["if"], env):
            return rule.get("when", "always") != "never"
    return False


def job_when(job: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """How the job runs in this pipeline ('on_success', 'manual', ...), or None if it's left out."""
    rules = job.get("rules")
    if rules is None:
        return str(job.get("when", "on_success"))
    for rule in rules:
        assert set(rule) <= {"if", "when", "allow_failure", "variables", "needs", "interruptible"}, rule
        if "if" not in rule or evaluate_if(rule["if"], env):
            when = str(rule.get("when", job.get("when", "on_success")))
            return None if when == "never" else when
    return None


def pipeline(config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """{job name: (when, job)} for the jobs a pipeline with these variables would contain."""
    if not pipeline_runs(config, env):
        return {}
    out = {}
    for name, job in jobs(config).items():
        when = job_when(job, env)
        if when is not None:
            out[name] = (when, job)
    return out


# --------------------------------------------------------------------------------------------------
# Pipelines we care about
# --------------------------------------------------------------------------------------------------

MR = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_IID": "7",
    "CI_COMMIT_REF_NAME": "feature",
    "CI_DEFAULT_BRANCH": "main",
    "CI_SERVER_URL": "https://gitlab.com",
}
MAIN = {
    "CI_PIPELINE_SOURCE": "push",
    "CI_COMMIT_BRANCH": "main",
    "CI_COMMIT_REF_NAME": "main",
    "CI_DEFAULT_BRANCH": "main",
    "CI_SERVER_URL": "https://gitlab.com",
}
FEATURE_PUSH = {**MAIN, "CI_COMMIT_BRANCH": "feature", "CI_COMMIT_REF_NAME": "feature"}

OIDC = {
    "PULUMI_BACKEND_URL": "s3://state",
    "PULUMI_CONFIG_PASSPHRASE": "pw",
    "AWS_ROLE_ARN": "arn:aws:iam::1:role/ci",
}
KEYS = {
    "PULUMI_BACKEND_URL": "s3://state",
    "PULUMI_CONFIG_PASSPHRASE": "pw",
    "AWS_ACCESS_KEY_ID": "AKIA",
    "AWS_SECRET_ACCESS_KEY": "s",
}
CLOUD = {
    "PULUMI_BACKEND_URL": "https://api.pulumi.com",
    "PULUMI_ACCESS_TOKEN": "pul-x",
    "AWS_ROLE_ARN": "arn",
}
PREVIEW_ROLE = {
    "PULUMI_BACKEND_URL": "s3://state",
    "PULUMI_CONFIG_PASSPHRASE": "pw",
    "AWS_PREVIEW_ROLE_ARN": "arn",
}
WITH_CREDENTIALS = {"oidc": OIDC, "keys": KEYS, "pulumi-cloud": CLOUD}
INCOMPLETE = {
    "nothing": {},
    "backend-only": {"PULUMI_BACKEND_URL": "s3://state", "PULUMI_CONFIG_PASSPHRASE": "pw"},
    "aws-only": {"AWS_ROLE_ARN": "arn", "AWS_ACCESS_KEY_ID": "AKIA"},
    "no-passphrase": {"PULUMI_BACKEND_URL": "s3://state", "AWS_ROLE_ARN": "arn"},
    "empty-backend": {**OIDC, "PULUMI_BACKEND_URL": ""},
}
ALL_ENVS = {
    f"{where}+{creds_name}": {**base, **creds}
    for where, base in {"mr": MR, "main": MAIN, "feature-push": FEATURE_PUSH}.items()
    for creds_name, creds in {**WITH_CREDENTIALS, **INCOMPLETE, "preview-role": PREVIEW_ROLE}.items()
}


def _commands_matching(job: Mapping[str, Any], pattern: str) -> list[str]:
    return [c for c in job["commands"] if re.search(pattern, c)]


def _stack_flag(command: str) -> str | None:
    m = re.search(r"--stack[ =]\"?([\w./-]+)\"?", command)
    return m.group(1) if m else None


def _pulumi_jobs(config: Mapping[str, Any], subcommand: str, stack: str) -> list[str]:
    return [
        name
        for name, job in jobs(config).items()
        if any(_stack_flag(c) == stack for c in _commands_matching(job, rf"\bpulumi {subcommand}\b"))
    ]


# --------------------------------------------------------------------------------------------------
# Checks (each returns its problems; [] means the property holds)
# --------------------------------------------------------------------------------------------------


def problems_workflow(config: Mapping[str, Any]) -> list[str]:
    problems = []
    if not pipeline_runs(config, MR):
        problems.append("no pipeline for merge requests")
    if not pipeline_runs(config, MAIN):
        problems.append("no pipeline on the default branch")
    if pipeline_runs(config, FEATURE_PUSH):
        problems.append("branch pushes get a pipeline too (duplicates the MR pipeline)")
    return problems


def problems_tests(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for env_name, env in (("merge request", MR), ("default branch", MAIN)):
        runs = pipeline(config, env)
        testers = [n for n, (when, job) in runs.items() if when == "on_success" and _tests(job)]
        if not testers:
            problems.append(f"no job runs the test suite on the {env_name}")
    return problems


def _tests(job: Mapping[str, Any]) -> bool:
    return bool(_commands_matching(job, r"^make test\b|\bpytest\b"))


def problems_plan(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for stack in STACKS:
        for env_name, env in (("merge request", MR), ("default branch", MAIN)):
            runs = pipeline(config, env)
            planners = [
                n
                for n, (when, job) in runs.items()
                if when == "on_success" and _commands_matching(job, rf"^make plan STACK=\"?{stack}\"?(\s|$)")
            ]
            if not planners:
                problems.append(f"no offline plan job for stack {stack} on the {env_name}")
    return problems


def problems_preview(config: Mapping[str, Any]) -> list[str]:
    problems = []
    for stack in STACKS:
        names = _pulumi_jobs(config, "preview", stack)
        if not names:
            problems.append(f"no `pulumi preview --stack {stack}` job")
        for name in names:
            job = jobs(config)[name]
            for command in _commands_matching(job, r"\bpulumi preview\b"):
                if not re.search(r"(^|\s)--diff(\s|$)", command):
                    problems.append(f"{name}: preview without --diff")
                if not re.search(r"--policy-pack[ =]\"?policy\"?(\s|$)", command):
                    problems.append(f"{name}: preview without --policy-pack policy")
            if not job["image_name"].startswith("pulumi/pulumi-python"):
                problems.append(f"{name}: image {job['image_name']!r} is not pulumi/pulumi-python*")
            for env_name, env in ALL_ENVS.items():
                when = job_when(job, env) if pipeline_runs(config, env) else None
                should_run = env_name.startswith("mr+") and env_name[3:] in {
                    *WITH_CREDENTIALS,
                    "preview-role",
                }
                if should_run and when != "on_success":
                    problems.append(f"{name}: doesn't run automatically in {env_name} (when={when})")
                if not should_run and when is not None:
                    problems.append(f"{name}: runs in {env_name} (when={when})")
    return problems


def problems_deploy(config: Mapping[str, Any]) -> list[str]:
    problems = []
    expected = {"dev": "on_success", "prod": "manual"}
    for stack in STACKS:
        names = _pulumi_jobs(config, "up", stack)
        if not names:
            problems.append(f"no `pulumi up --stack {stack}` job")
        for name in names:
            job = jobs(config)[name]
            for command in _commands_matching(job, r"\bpulumi up\b"):
                if not re.search(r"(^|\s)(--yes|-y)(\s|$)", command):
                    problems.append(f"{name}: pulumi up without --yes hangs in CI")
                if not re.search(r"--policy-pack[ =]\"?policy\"?(\s|$)", command):
                    problems.append(f"{name}: pulumi up without --policy-pack policy")
            if not job["image_name"].startswith("pulumi/pulumi-python"):
                problems.append(f"{name}: image {job['image_name']!r} is not pulumi/pulumi-python*")
            for env_name, env in ALL_ENVS.items():
                when = job_when(job, env) if pipeline_runs(config, env) else None
                on_main_with_creds = env_name.startswith("main+") and env_name[5:] in WITH_CREDENTIALS
                want = expected.get(stack, "manual") if on_main_with_creds else None
                if when != want:
                    problems.append(f"{name}: when={when} in {env_name}, expected {want}")
    return problems


def problems_secrets(config: Mapping[str, Any]) -> list[str]:
    """Backend, passphrase and credentials come from CI variables, never from the file."""
    problems = []
    secret_names = {
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_ACCESS_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
    }
    secret_names |= {"PULUMI_BACKEND_URL", "AWS_ROLE_ARN", "AWS_PREVIEW_ROLE_ARN"}
    blocks = [config.get("variables", {})] + [
        job.get("variables", {}) for job in config.values() if isinstance(job, dict)
    ]
    for block in blocks:
        for name in secret_names & set(block or {}):
            problems.append(f"{name} is set in .gitlab-ci.yml; it must be a CI/CD variable")
    for name, job in jobs(config).items():
        for command in _commands_matching(job, r"\bpulumi login\b"):
            if "$PULUMI_BACKEND_URL" not in command and "${PULUMI_BACKEND_URL}" not in command:
                problems.append(f"{name}: `{command}` doesn't log in to $PULUMI_BACKEND_URL")
        runs_pulumi = _commands_matching(job, r"\bpulumi (preview|up)\b")
        if runs_pulumi and not _commands_matching(job, r"\bpulumi login\b"):
            problems.append(f"{name}: runs pulumi without `pulumi login $PULUMI_BACKEND_URL`")
    return problems


CHECKS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "workflow": problems_workflow,
    "tests": problems_tests,
    "plan": problems_plan,
    "preview": problems_preview,
    "deploy": problems_deploy,
    "secrets": problems_secrets,
}


@pytest.mark.parametrize("check", CHECKS)
def test_pipeline_property(check: str) -> None:
    assert CHECKS[check](load()) == []


def test_no_deploy_or_destroy_in_merge_requests() -> None:
    for env_name, env in ALL_ENVS.items():
        if not env_name.startswith("mr+"):
            continue
        for name, (_when, job) in pipeline(load(), env).items():
            assert not _commands_matching(job, r"\bpulumi (up|destroy|refresh --yes|import)\b"), (
                env_name,
                name,
            )


def test_prod_deploy_waits_for_dev() -> None:
    config = load()
    (prod,) = _pulumi_jobs(config, "up", "prod")
    (dev,) = _pulumi_jobs(config, "up", "dev")
    assert dev in jobs(config)[prod].get("needs", [])


def test_pulumi_cli_matches_sdk_pin() -> None:
    """The CLI image tag follows pulumi== in requirements.txt, so previews run the SDK's CLI."""
    variables = load()["variables"]
    pin = re.search(r"^pulumi==([\w.]+)\s*$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pin, "requirements.txt pins pulumi"
    assert variables["PULUMI_VERSION"] == pin.group(1)


def test_policy_pack_path_exists() -> None:
    assert (ROOT / "policy" / "PulumiPolicy.yaml").is_file()
    assert (ROOT / "policy" / "requirements.txt").is_file()


def test_pulumi_jobs_install_policy_pack_requirements() -> None:
    for name, job in jobs(load()).items():
        if _commands_matching(job, r"--policy-pack"):
            assert _commands_matching(job, r"pip install .*-r policy/requirements\.txt"), name


def test_evaluate_if_model() -> None:
    env = {"A": "x", "B": "", "C": "x"}
    assert evaluate_if('$A == "x" && $A', env)
    assert not evaluate_if("$B", env)
    assert not evaluate_if("$MISSING", env)
    assert evaluate_if("$A == $C && ($B || $A)", env)
    assert not evaluate_if('$A != "x" || ($B && $A)', env)
    assert evaluate_if("$MISSING == null && $A =~ /^x$/", env)


# --------------------------------------------------------------------------------------------------
# Mutation tests: break the real file the way each check guards against
# --------------------------------------------------------------------------------------------------


def _replace_in_scripts(config: dict[str, Any], old: str, new: str) -> None:
    for job in config.values():
        if isinstance(job, dict):
            for key in ("script", "before_script"):
                if key in job:
                    job[key] = [line.replace(old, new) for line in _lines(job[key])]


def _preview_template(config: dict[str, Any]) -> dict[str, Any]:
    name = next(
        n for n in config if n.startswith(".") and "pulumi preview" in str(config[n].get("script", ""))
    )
    return config[name]


def _deploy_rules(config: dict[str, Any], stack: str) -> list[dict[str, Any]]:
    (name,) = _pulumi_jobs(config, "up", stack)
    resolved = resolve(config, name)
    config[name]["rules"] = copy.deepcopy(resolved["rules"])
    return config[name]["rules"]


def _drop_credentials_from_preview(c: dict[str, Any]) -> None:
    rule = _preview_template(c)["rules"][0]
    rule["if"] = rule["if"].split(" && ")[0]


def _remove_plan_for_prod(c: dict[str, Any]) -> None:
    for name in [n for n in c if n.startswith("plan:") and "prod" in n]:
        del c[name]


MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
    ("workflow", "branch pipelines", lambda c: c["workflow"]["rules"].append({"if": "$CI_COMMIT_BRANCH"})),
    ("workflow", "no MR pipelines", lambda c: c["workflow"]["rules"].pop(0)),
    ("tests", "test job gone", lambda c: c.pop("test")),
    ("plan", "prod plan gone", _remove_plan_for_prod),
    ("plan", "plan of the wrong stack", lambda c: c["plan:prod"]["variables"].update(STACK="dev")),
    ("preview", "no --diff", lambda c: _replace_in_scripts(c, " --diff", "")),
    ("preview", "no policy pack", lambda c: _replace_in_scripts(c, " --policy-pack policy", "")),
    ("preview", "runs without credentials", _drop_credentials_from_preview),
    ("preview", "runs everywhere", lambda c: _preview_template(c).pop("rules")),
    ("preview", "manual", lambda c: _preview_template(c)["rules"][0].update(when="manual")),
    ("preview", "other image", lambda c: c["variables"].update(PULUMI_IMAGE="pulumi/pulumi")),
    ("deploy", "prod automatic", lambda c: _deploy_rules(c, "prod")[0].pop("when")),
    ("deploy", "prod on MRs", lambda c: _deploy_rules(c, "prod").append({"if": "$CI_MERGE_REQUEST_IID", "when": "manual"})),
    ("deploy", "dev manual", lambda c: _deploy_rules(c, "dev")[0].update(when="manual")),
    ("deploy", "prod from any branch", lambda c: _deploy_rules(c, "prod")[0].update({"if": "$CI_COMMIT_BRANCH"})),
    ("deploy", "no --yes", lambda c: _replace_in_scripts(c, " --yes", "")),
    ("deploy", "up without policy pack", lambda c: _replace_in_scripts(c, "up --stack \"$STACK\" --yes --diff --policy-pack policy", "up --stack \"$STACK\" --yes --diff")),
    ("secrets", "passphrase in file", lambda c: c["variables"].update(PULUMI_CONFIG_PASSPHRASE="hunter2")),
    ("secrets", "local backend", lambda c: _replace_in_scripts(c, 'pulumi login "$PULUMI_BACKEND_URL"', "pulumi login --local")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check", "label", "mutate"), MUTATIONS, ids=[f"{check}-{label}" for check, label, _ in MUTATIONS]
)
def test_check_catches_regression(check: str, label: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    config = load()
    mutate(config)
    assert CHECKS[check](config), f"{check} check missed: {label}"


def test_every_check_has_a_mutation() -> None:
    assert {c for c, _, _ in MUTATIONS} == set(CHECKS)
