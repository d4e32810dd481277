"""Database users (issue 8): config rules, per-user secrets or IAM grants in both schemes, the bootstrap Lambda
and its Invocation, the probe's access to the users, outputs, and no password anywhere it must not be."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

import pytest

from components.lambda_package import build_package
from components.settings import ConfigError, parse_settings
from components.users import MODULES
from plan.engine import SecretValue
from tests.conftest import deploy, ok, policy_doc, reveal

APP = {"name": "app", "privileges": ["SELECT", "INSERT"]}
LEGACY = {"name": "legacy", "clientIamAuth": "DISABLED", "clientPasswordAuthType": "MYSQL_NATIVE_PASSWORD"}
REPORTS = {"name": "reports", "database": "analytics"}
USERS = [APP, LEGACY, REPORTS]
PASSWORD = "random:index/randomPassword:RandomPassword"
SECRET = "aws:secretsmanager/secret:Secret"


def problems(**config) -> list[str]:
    """The ConfigError lines for `config` (CLI strings), parsed as `pulumi up` would, without running it."""
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw.get, "rds-proxy", "dev")
    return caught.value.problems


def one_problem(**config) -> str:
    (problem,) = problems(**config)
    return problem


def users_run(scheme: str = "NONE", stack: str = "dev", **config):
    """USERS under `scheme` (clientPasswordAuthType dropped under IAM_AUTH, where it is an error)."""
    users = (
        USERS
        if scheme == "NONE"
        else [{k: v for k, v in u.items() if k != "clientPasswordAuthType"} for u in USERS]
    )
    return ok(stack, dbUsers=users, proxyDefaultAuthScheme=scheme, **config)


def read_statement(run, policy) -> dict:
    """The secret-read statement of `policy`, after checking its only companion: decrypt with the stack key,
    and only through Secrets Manager."""
    read, *rest = policy_doc(policy.inputs)["Statement"]
    assert read["Sid"] == "ReadProxySecrets"
    assert rest == [
        {
            "Sid": "DecryptProxySecrets",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": run.one("aws:kms/key:Key").outputs["arn"],
            "Condition": {"StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com"]}},
        }
    ]
    return read


def input_of(run) -> dict:
    return json.loads(run.named("rds-proxy-users-bootstrap").inputs["input"])


# ---- config: every rule names the key, the value and what is allowed ----


def test_defaults_fill_privileges_database_client_iam_and_password_type():
    s = parse_settings(
        {"dbUsers": '[{"name": "app"}]', "iamAuth": "DISABLED", "dbName": "shop"}.get, "p", "d"
    )
    (user,) = s.users.users
    assert user.privileges == ("SELECT",)
    assert user.database == "shop"
    assert user.client_iam_auth.value == "DISABLED"
    assert user.client_password_auth_type is not None
    assert user.client_password_auth_type.value == "MYSQL_CACHING_SHA2_PASSWORD"
    assert s.users.probe_user.name == "rdsproxy_probe"


def test_privileges_are_normalised_to_upper_case_without_duplicates():
    s = parse_settings(
        {"dbUsers": '[{"name": "a", "privileges": ["select", "Show  View", "SELECT"]}]'}.get, "p", "d"
    )
    assert s.users.users[0].privileges == ("SELECT", "SHOW VIEW")


def test_db_users_must_be_a_list_of_objects():
    problem = one_problem(dbUsers='{"name": "app"}')
    assert problem.startswith('dbUsers: "{\\"name\\": \\"app\\"}" is not allowed; expected a list of objects')


def test_unknown_entry_keys_are_refused():
    problem = one_problem(dbUsers=[{"name": "app", "password": "x"}])
    assert problem.startswith('dbUsers[0]: "password" is not allowed; expected keys among name, privileges')


@pytest.mark.parametrize("name", ["1app", "app-user", "app user", "a" * 33, "", "x'; DROP USER root; --"])
def test_user_names_are_a_letter_then_word_characters_at_most_32(name):
    problem = one_problem(dbUsers=[{"name": name}])
    assert problem.startswith(f"dbUsers[0].name: {json.dumps(name)} is not allowed; expected a letter, then")
    assert "at most 32 characters" in problem


def test_a_32_character_name_is_accepted():
    assert (
        parse_settings({"dbUsers": json.dumps([{"name": "a" * 32}])}.get, "p", "d").users.users[0].name
        == "a" * 32
    )


def test_a_missing_name_is_refused():
    assert one_problem(dbUsers=[{"privileges": ["SELECT"]}]).startswith(
        "dbUsers[0].name: null is not allowed"
    )


def test_names_are_unique_ignoring_case():
    problem = one_problem(dbUsers=[{"name": "App"}, {"name": "app"}])
    assert problem.startswith('dbUsers[1].name: "app" is not allowed;') and "unique ignoring case" in problem


def test_the_master_user_is_not_a_db_user():
    problem = one_problem(dbUsers=[{"name": "ADMIN"}])
    assert problem.startswith('dbUsers[0].name: "ADMIN" is not allowed;') and "not the master user" in problem


def test_the_probe_user_is_not_a_db_user():
    problem = one_problem(dbUsers=[{"name": "health"}], probeUser="health")
    assert problem.startswith('dbUsers[0].name: "health" is not allowed;') and "not probeUser" in problem


@pytest.mark.parametrize(
    "name", ["rdsadmin", "RdsReplAdmin", "rdsproxyadmin", "root", "mysql.sys", "mysql.session"]
)
def test_reserved_names_are_refused(name):
    problem = one_problem(dbUsers=[{"name": name}])
    assert problem.startswith(f'dbUsers[0].name: "{name}" is not allowed;')
    assert "rdsadmin, rdsproxyadmin, rdsrepladmin, root or mysql.*" in problem


@pytest.mark.parametrize(
    "privilege",
    [
        "ALL",
        "ALL PRIVILEGES",
        "SUPER",
        "GRANT OPTION",
        "FILE",
        "PROCESS",
        "SHUTDOWN",
        "CREATE USER",
        "RELOAD",
        "USAGE",
    ],
)
def test_administrative_privileges_are_refused(privilege):
    problem = one_problem(dbUsers=[{"name": "app", "privileges": ["SELECT", privilege]}])
    assert problem.startswith(
        f'dbUsers[0].privileges: "{privilege}" is not allowed; expected table or routine'
    )
    assert "never ALL, SUPER, GRANT OPTION, FILE, PROCESS, SHUTDOWN, CREATE USER" in problem


def test_privileges_must_be_a_non_empty_list():
    assert one_problem(dbUsers=[{"name": "app", "privileges": []}]).startswith(
        "dbUsers[0].privileges: [] is not allowed; expected a non-empty list"
    )


def test_database_is_an_identifier():
    assert one_problem(dbUsers=[{"name": "app", "database": "my-db"}]).startswith(
        'dbUsers[0].database: "my-db" is not allowed; expected a letter, then letters, digits or _, at most 64'
    )


@pytest.mark.parametrize(
    "database", ["mysql", "SYS", "information_schema", "performance_schema", "rdsproxy_bootstrap"]
)
def test_no_user_is_granted_anything_on_a_system_database(database):
    problem = one_problem(dbUsers=[{"name": "app", "database": database}])
    assert problem.startswith(f'dbUsers[0].database: "{database}" is not allowed; expected a letter')
    assert "not information_schema, mysql, performance_schema, rdsproxy_bootstrap, sys" in problem
    assert one_problem(dbName=database.lower()).startswith(f'dbName: "{database.lower()}" is not allowed;')


def test_client_iam_auth_is_required_or_disabled():
    assert one_problem(dbUsers=[{"name": "app", "clientIamAuth": "OPTIONAL"}]) == (
        'dbUsers[0].clientIamAuth: "OPTIONAL" is not allowed; expected REQUIRED or DISABLED'
    )


def test_client_password_auth_type_is_one_of_the_mysql_types():
    assert one_problem(dbUsers=[{"name": "app", "clientPasswordAuthType": "POSTGRES_MD5"}]) == (
        'dbUsers[0].clientPasswordAuthType: "POSTGRES_MD5" is not allowed; expected '
        "MYSQL_CACHING_SHA2_PASSWORD or MYSQL_NATIVE_PASSWORD"
    )


def test_client_password_auth_type_is_an_error_under_iam_auth():
    problem = one_problem(
        dbUsers=[{"name": "app", "clientPasswordAuthType": "MYSQL_NATIVE_PASSWORD"}],
        proxyDefaultAuthScheme="IAM_AUTH",
    )
    assert problem.startswith('dbUsers[0].clientPasswordAuthType: "MYSQL_NATIVE_PASSWORD" is not allowed;')
    assert "IAM_AUTH" in problem


def test_required_client_iam_auth_needs_require_tls():
    problem = one_problem(dbUsers=[{"name": "app", "clientIamAuth": "REQUIRED"}], requireTls=False)
    assert problem.startswith('dbUsers[0].clientIamAuth: "REQUIRED" is not allowed; expected DISABLED while')
    assert "set requireTls: true" in problem
    # A user whose clients send passwords is fine without TLS at the proxy (not recommended, but allowed).
    parse_settings(
        {"dbUsers": '[{"name": "app", "clientIamAuth": "DISABLED"}]', "requireTls": "false"}.get, "p", "d"
    )


def test_iam_auth_scheme_needs_require_tls():
    problem = one_problem(proxyDefaultAuthScheme="IAM_AUTH", requireTls=False)
    assert problem.startswith(
        'proxyDefaultAuthScheme: "IAM_AUTH" is not allowed; expected NONE while requireTls'
    )


def test_auth_scheme_is_none_or_iam_auth():
    assert one_problem(proxyDefaultAuthScheme="IAM") == (
        'proxyDefaultAuthScheme: "IAM" is not allowed; expected NONE or IAM_AUTH'
    )


@pytest.mark.parametrize("name", ["admin", "root", "rdsproxyadmin", "9probe", "p" * 33])
def test_probe_user_follows_the_name_rules_and_is_never_the_master(name):
    problem = one_problem(probeUser=name)
    assert problem.startswith(f'probeUser: "{name}" is not allowed; expected a letter, then')
    assert "not the master user" in problem


def test_at_most_200_secrets_per_proxy_counting_the_master_and_the_probe_user():
    users = lambda n: json.dumps([{"name": f"u{i}"} for i in range(n)])  # noqa: E731
    assert len(parse_settings({"dbUsers": users(198)}.get, "p", "d").users.users) == 198
    (problem,) = problems(dbUsers=users(199))
    assert problem.startswith('dbUsers: "199 users" is not allowed; expected at most 198 users')
    assert "(201 here)" in problem
    # Under IAM_AUTH users have no secrets: only the master's is registered.
    parse_settings({"dbUsers": users(199), "proxyDefaultAuthScheme": "IAM_AUTH"}.get, "p", "d")


def test_every_problem_is_reported_at_once_in_declaration_order_and_nothing_is_declared():
    run = deploy(
        "dev",
        dbUsers=[{"name": "root", "privileges": ["SUPER"]}],
        proxyDefaultAuthScheme="BOTH",
        azCount=9,
    )
    assert isinstance(run.error, ConfigError)
    keys = [p.split(":")[0] for p in run.error.problems]
    assert keys == ["azCount", "dbUsers[0].name", "dbUsers[0].privileges", "proxyDefaultAuthScheme"]
    assert run.resources == []


# ---- NONE: one secret per user, the proxy's auth entries, what the proxy role reads ----


def test_each_user_gets_a_password_generated_like_the_master_password():
    run = users_run()
    master = run.named("rds-proxy-creds-master-password").inputs
    names = {"app", "legacy", "reports", "rdsproxy_probe"}
    for user in names:
        assert run.named(f"rds-proxy-users-{user}-password").inputs == master, user
    assert len(run.by_type(PASSWORD)) == len(names) + 1


def test_each_user_secret_holds_the_rotation_shape_as_a_pulumi_secret():
    run = users_run()
    address = run.one("aws:rds/instance:Instance").outputs["address"]
    for user, database in (("app", "testdb"), ("reports", "analytics"), ("rdsproxy_probe", "testdb")):
        version = run.named(f"rds-proxy-users-{user}-secret-value").inputs
        assert isinstance(version["secretString"], SecretValue)
        password = reveal(run.named(f"rds-proxy-users-{user}-password").outputs["result"])
        assert json.loads(version["secretString"].value) == {
            "username": user,
            "password": password,
            "engine": "mysql",
            "host": address,
            "port": 3306,
            "dbname": database,
        }
        assert version["secretId"] == run.named(f"rds-proxy-users-{user}-secret").id


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_user_secrets_are_never_protected_while_the_master_secret_is_in_prod(stack):
    run = users_run(stack=stack)
    user_secrets = [s for s in run.by_type(SECRET) if "-users-" in s.name]
    assert len(user_secrets) == 4
    assert [s.protect for s in user_secrets] == [False] * 4
    assert run.named("rds-proxy-creds-master-secret").protect is (stack == "prod")


def test_proxy_has_one_explicit_auth_entry_per_secret_sorted_by_user_name_after_the_master():
    run = users_run()
    arn = {s.name: s.outputs["arn"] for s in run.by_type(SECRET)}
    auths = run.one("aws:rds/proxy:Proxy").inputs["auths"]

    def entry(secret, iam, password_type, description):
        return {
            "authScheme": "SECRETS",
            "secretArn": arn[secret],
            "iamAuth": iam,
            "clientPasswordAuthType": password_type,
            "description": description,
        }

    sha2 = "MYSQL_CACHING_SHA2_PASSWORD"
    assert auths == [
        entry("rds-proxy-creds-master-secret", "REQUIRED", sha2, "Master credentials"),
        entry("rds-proxy-users-app-secret", "REQUIRED", sha2, "Database user app"),
        entry("rds-proxy-users-legacy-secret", "DISABLED", "MYSQL_NATIVE_PASSWORD", "Database user legacy"),
        entry("rds-proxy-users-rdsproxy_probe-secret", "REQUIRED", sha2, "Database user rdsproxy_probe"),
        entry("rds-proxy-users-reports-secret", "REQUIRED", sha2, "Database user reports"),
    ]
    assert run.one("aws:rds/proxy:Proxy").inputs["defaultAuthScheme"] == "NONE"


def test_proxy_role_reads_exactly_the_master_and_user_secrets():
    run = users_run()
    statement = read_statement(run, run.named("rds-proxy-proxy-secret-access"))
    assert sorted(statement["Resource"]) == sorted(s.outputs["arn"] for s in run.by_type(SECRET))
    assert not [
        p for p in run.by_type("aws:iam/rolePolicy:RolePolicy") if p.name == "rds-proxy-proxy-db-connect"
    ]


def test_without_iam_auth_scheme_the_instance_keeps_its_planned_inputs():
    assert "iamDatabaseAuthenticationEnabled" not in users_run().one("aws:rds/instance:Instance").inputs


# ---- IAM_AUTH: no user secrets, IAM on the database, exact rds-db:connect for the proxy ----


def test_iam_auth_sets_the_scheme_and_keeps_only_the_master_entry():
    run = users_run("IAM_AUTH")
    proxy = run.one("aws:rds/proxy:Proxy").inputs
    assert proxy["defaultAuthScheme"] == "IAM_AUTH"
    assert [a["secretArn"] for a in proxy["auths"]] == [
        run.named("rds-proxy-creds-master-secret").outputs["arn"]
    ]
    assert [s.name for s in run.by_type(SECRET)] == ["rds-proxy-creds-master-secret"]
    assert [p.name for p in run.by_type(PASSWORD)] == ["rds-proxy-creds-master-password"]


def test_iam_auth_enables_iam_database_authentication():
    assert (
        users_run("IAM_AUTH").one("aws:rds/instance:Instance").inputs["iamDatabaseAuthenticationEnabled"]
        is True
    )


def test_iam_auth_proxy_role_connects_as_exactly_these_users_on_the_database_resource_id():
    run = users_run("IAM_AUTH")
    resource_id = run.one("aws:rds/instance:Instance").outputs["resourceId"]
    assert resource_id.startswith("db-")
    policy = run.named("rds-proxy-proxy-db-connect")
    assert policy.inputs["role"] == run.named("rds-proxy-proxy-role").id
    (statement,) = policy_doc(policy.inputs)["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "rds-db:connect"
    assert statement["Resource"] == [
        f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{resource_id}/{u}"
        for u in ("app", "legacy", "rdsproxy_probe", "reports")
    ]
    # The master's secret stays readable (AWS's migration keeps both permissions).
    read = read_statement(run, run.named("rds-proxy-proxy-secret-access"))
    assert read["Resource"] == [run.named("rds-proxy-creds-master-secret").outputs["arn"]]


def test_iam_auth_target_registration_waits_for_the_connect_grant():
    run = users_run("IAM_AUTH")
    assert (
        run.named("rds-proxy-proxy-db-connect").urn in run.one("aws:rds/proxyTarget:ProxyTarget").dependencies
    )


# ---- outputs ----


@pytest.mark.parametrize("scheme", ["NONE", "IAM_AUTH"])
def test_connect_arns_output_names_the_proxy_and_each_entry_reached_with_iam(scheme):
    run = users_run(scheme)
    proxy_id = run.one("aws:rds/proxy:Proxy").outputs["arn"].rsplit(":", 1)[1]
    # legacy's clients send its password under NONE (clientIamAuth DISABLED); under IAM_AUTH all use IAM.
    reached = ("app", "reports") if scheme == "NONE" else ("app", "legacy", "reports")
    assert run.exports["dbUserConnectArns"] == {
        u: f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{proxy_id}/{u}" for u in reached
    }


def test_secret_arns_output_lists_the_entries_secrets_under_none_only():
    run = users_run()
    assert run.exports["dbUserSecretArns"] == {
        u: run.named(f"rds-proxy-users-{u}-secret").outputs["arn"] for u in ("app", "legacy", "reports")
    }
    assert users_run("IAM_AUTH").exports["dbUserSecretArns"] == {}


# ---- the bootstrap function ----


def test_bootstrap_function_runs_the_users_handler_on_python312_with_its_hash():
    fn = users_run().named("rds-proxy-users-function").inputs
    assert fn["name"] == "rds-proxy-dev-users"
    assert (fn["runtime"], fn["handler"]) == ("python3.12", "users_function.lambda_handler")
    # The handler and the RDS CA bundle it verifies the database with (tests/test_rds_ca_bundle.py).
    package = build_package([*MODULES, "rds-global-bundle.pem"])
    assert fn["sourceCodeHash"] == base64.b64encode(hashlib.sha256(package).digest()).decode()


def test_bootstrap_function_reaches_the_database_directly_from_its_own_group():
    run = users_run()
    fn = run.named("rds-proxy-users-function").inputs
    assert fn["environment"]["variables"] == {
        "DB_HOST": run.one("aws:rds/instance:Instance").outputs["address"],
        "DB_PORT": "3306",
        "DB_CA_BUNDLE": "/var/task/rds-global-bundle.pem",
    }
    assert fn["vpcConfig"]["subnetIds"] == [s.id for s in run.by_type("aws:ec2/subnet:Subnet")]
    assert fn["vpcConfig"]["securityGroupIds"] == [run.named("rds-proxy-net-users-sg").id]


def test_bootstrap_role_reads_exactly_the_master_and_user_secrets():
    run = users_run()
    role = run.named("rds-proxy-users-role")
    trust = policy_doc(role.inputs, "assumeRolePolicy")
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    assert run.named("rds-proxy-users-function").inputs["role"] == role.outputs["arn"]
    attachment = run.named("rds-proxy-users-vpc-access").inputs
    assert attachment["role"] == role.outputs["name"]
    assert attachment["policyArn"] == "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    policy = run.named("rds-proxy-users-secret-access")
    assert policy.inputs["role"] == role.id
    statement = read_statement(run, policy)  # the stack key, via Secrets Manager only
    assert statement["Resource"] == [run.named("rds-proxy-creds-master-secret").outputs["arn"]] + [
        run.named(f"rds-proxy-users-{u}-secret").outputs["arn"]
        for u in ("app", "legacy", "rdsproxy_probe", "reports")
    ]
    iam_run = users_run("IAM_AUTH")
    statement = read_statement(iam_run, iam_run.named("rds-proxy-users-secret-access"))
    assert statement["Resource"] == [iam_run.named("rds-proxy-creds-master-secret").outputs["arn"]]


def test_bootstrap_with_a_customer_key_may_decrypt_only_via_secrets_manager():
    from components.proxy import AuthScheme, IamAuth
    from components.users import DbUser, DbUsers, DbUsersArgs, UsersSettings
    from plan.engine import run_program

    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    def program():
        probe = DbUser(
            name="probe", privileges=("SHOW VIEW",), database="d", client_iam_auth=IamAuth.REQUIRED,
            client_password_auth_type=None,
        )  # fmt: skip
        DbUsers(
            "u",
            DbUsersArgs(
                subnet_ids=["subnet-1"],
                security_group_ids=["sg-1"],
                db_address="db.example",
                db_port=3306,
                master_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:m-AbCdEf",
                network_ready=[],
                kms_key_arn=key,
                settings=UsersSettings(
                    scheme=AuthScheme.NONE,
                    users=(),
                    probe_user=probe,
                    function_name="f",
                    log_retention_days=30,
                ),
            ),
        )

    run = run_program("dev", {"aws:region": "eu-west-1"}, program=program)
    assert run.error is None, run.error
    read, decrypt = policy_doc(run.named("u-secret-access").inputs)["Statement"]
    assert read["Resource"] == [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:m-AbCdEf",
        run.named("u-probe-secret").outputs["arn"],
    ]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == key
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": ["secretsmanager.eu-west-1.amazonaws.com"]}
    }
    assert run.named("u-probe-secret").inputs["kmsKeyId"] == key


def test_bootstrap_log_group_exists_first_with_retention():
    run = users_run()
    fn = run.named("rds-proxy-users-function")
    group = run.named("rds-proxy-users-logs")
    assert group.inputs["name"] == "/aws/lambda/rds-proxy-dev-users"
    assert group.inputs["retentionInDays"] == 30
    for needed in ("rds-proxy-users-logs", "rds-proxy-users-vpc-access", "rds-proxy-users-secret-access"):
        assert run.named(needed).urn in fn.dependencies, needed


# ---- the Invocation ----


@pytest.mark.parametrize("scheme", ["NONE", "IAM_AUTH"])
def test_invocation_input_lists_names_grants_databases_auth_kinds_and_secret_arns(scheme):
    run = users_run(scheme)
    secret = {s.name: s.outputs["arn"] for s in run.by_type(SECRET)}
    kind = "password" if scheme == "NONE" else "iam"

    def entry(name, privileges, database):
        arn = secret.get(f"rds-proxy-users-{name}-secret")
        assert (arn is None) == (scheme == "IAM_AUTH")
        return {"name": name, "privileges": privileges, "database": database, "auth": kind, "secret_arn": arn}

    assert input_of(run) == {
        "master_secret_arn": secret["rds-proxy-creds-master-secret"],
        "users": [
            entry("app", ["SELECT", "INSERT"], "testdb"),
            entry("legacy", ["SELECT"], "testdb"),
            entry("rdsproxy_probe", ["SHOW VIEW"], "testdb"),
            entry("reports", ["SELECT"], "analytics"),
        ],
    }


@pytest.mark.parametrize("scheme", ["NONE", "IAM_AUTH"])
@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_the_bootstrap_handler_accepts_the_input_the_stack_declares(scheme, action):
    """The other side of the contract: the handler's own validation takes the declared input as the provider
    sends it (with `tf` added under CRUD) and sees the same users."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambda_src"))
    import users_function

    declared = input_of(users_run(scheme))
    request = users_function.parse_event({**declared, "tf": {"action": action, "prev_input": None}})
    assert request.action == action
    assert request.master_secret_arn == declared["master_secret_arn"]
    if action != "delete":
        assert [(u.name, u.auth, u.secret_arn) for u in request.users] == [
            (u["name"], u["auth"], u["secret_arn"]) for u in declared["users"]
        ]


def test_invocation_is_crud_on_the_fixed_function_name_with_nothing_that_forces_replacement():
    run = users_run()
    invocation = run.named("rds-proxy-users-bootstrap").inputs
    assert invocation["lifecycleScope"] == "CRUD"
    assert invocation["functionName"] == "rds-proxy-dev-users"
    assert "triggers" not in invocation and "qualifier" not in invocation
    assert "terraformKey" not in invocation  # the handler reads the provider's default key, "tf"


def test_invocation_runs_once_the_database_its_secrets_and_its_network_path_exist():
    run = users_run()
    invocation = run.named("rds-proxy-users-bootstrap")
    assert run.depends_on(invocation, run.one("aws:rds/instance:Instance"))
    for needed in (
        "rds-proxy-users-function",
        "rds-proxy-users-app-secret-value",
        "rds-proxy-users-rdsproxy_probe-secret-value",
        "rds-proxy-net-users-to-db",
        "rds-proxy-net-db-from-users",
        "rds-proxy-net-users-to-vpce",
        "rds-proxy-net-vpce-from-users",
        "rds-proxy-net-secretsmanager-endpoint",
    ):
        assert run.named(needed).urn in invocation.dependencies, needed


def test_changing_the_user_list_updates_the_same_invocation_in_place():
    """function_name, qualifier and triggers are ForceNew in the provider; input is not under CRUD. So a
    changed list must change only `input` of the same Invocation (same URN): an update, never a replacement."""
    before = ok("dev", dbUsers=[APP])
    after = ok("dev", dbUsers=[APP, REPORTS])
    old, new = before.named("rds-proxy-users-bootstrap"), after.named("rds-proxy-users-bootstrap")
    assert old.urn == new.urn
    changed = {k for k in old.inputs.keys() | new.inputs.keys() if old.inputs.get(k) != new.inputs.get(k)}
    assert changed == {"input"}
    assert [u["name"] for u in json.loads(new.inputs["input"])["users"]] == [
        "app",
        "rdsproxy_probe",
        "reports",
    ]
    assert old.aliases == new.aliases == [] and old.replace_with == new.replace_with == []


def test_switching_scheme_also_updates_the_same_invocation_and_function():
    before, after = users_run(), users_run("IAM_AUTH")
    for name in ("rds-proxy-users-bootstrap", "rds-proxy-users-function"):
        assert before.named(name).urn == after.named(name).urn
        assert before.named(name).inputs.get(
            "functionName", before.named(name).inputs.get("name")
        ) == after.named(name).inputs.get("functionName", after.named(name).inputs.get("name"))


# ---- the probe and the users ----


def test_probe_knows_each_entry_by_auth_kind_and_secret_arn_only():
    run = users_run()
    env = run.named("rds-proxy-probe-function").inputs["environment"]["variables"]
    assert env["DB_USER"] == "rdsproxy_probe"
    assert json.loads(env["DB_USERS"]) == {
        "app": {"auth": "iam", "secret_arn": None},
        "legacy": {
            "auth": "password",
            "secret_arn": run.named("rds-proxy-users-legacy-secret").outputs["arn"],
        },
        "reports": {"auth": "iam", "secret_arn": None},
    }


def test_probe_may_connect_as_its_user_and_each_iam_entry_and_read_only_password_entries_secrets():
    run = users_run()
    proxy_id = run.one("aws:rds/proxy:Proxy").outputs["arn"].rsplit(":", 1)[1]
    (connect,) = policy_doc(run.named("rds-proxy-probe-db-connect").inputs)["Statement"]
    assert connect["Resource"] == [
        f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{proxy_id}/{u}"
        for u in ("rdsproxy_probe", "app", "reports")
    ]
    read = read_statement(run, run.named("rds-proxy-probe-secret-access"))
    assert read["Resource"] == [run.named("rds-proxy-users-legacy-secret").outputs["arn"]]
    assert "rds-proxy-net-probe-to-vpce" in {r.name for r in run.resources}


def test_under_iam_auth_the_probe_logs_in_with_iam_as_every_user_and_reads_no_secret():
    run = users_run("IAM_AUTH")
    env = run.named("rds-proxy-probe-function").inputs["environment"]["variables"]
    assert env["DB_AUTH"] == "iam"
    assert json.loads(env["DB_USERS"]) == {
        u: {"auth": "iam", "secret_arn": None} for u in ("app", "legacy", "reports")
    }
    (connect,) = policy_doc(run.named("rds-proxy-probe-db-connect").inputs)["Statement"]
    assert [a.rsplit("/", 1)[1] for a in connect["Resource"]] == [
        "rdsproxy_probe",
        "app",
        "legacy",
        "reports",
    ]
    names = {r.name for r in run.resources}
    assert "rds-proxy-probe-secret-access" not in names and "rds-proxy-net-probe-to-vpce" not in names


def test_no_statement_uses_a_wildcard_in_either_scheme():
    mine = ("rds-proxy-proxy-", "rds-proxy-probe-", "rds-proxy-users-")  # the roles issue 8 writes to
    for scheme in ("NONE", "IAM_AUTH"):
        for policy in users_run(scheme).by_type("aws:iam/rolePolicy:RolePolicy"):
            if not policy.name.startswith(mine):
                continue
            for statement in policy_doc(policy.inputs)["Statement"]:
                for field in ("Action", "Resource"):
                    values = statement[field] if isinstance(statement[field], list) else [statement[field]]
                    assert all("*" not in v for v in values), (scheme, policy.name)


# ---- no password anywhere it must not be ----


@pytest.mark.parametrize("scheme", ["NONE", "IAM_AUTH"])
def test_no_generated_password_in_the_invocation_input_env_vars_or_outputs(scheme):
    run = users_run(scheme, iamAuth="DISABLED")
    passwords = [reveal(p.outputs["result"]) for p in run.by_type(PASSWORD)]
    assert len(passwords) == (5 if scheme == "NONE" else 1)
    places = {
        "invocation input": run.named("rds-proxy-users-bootstrap").inputs["input"],
        "exports": repr(run.exports),
    }
    for fn in run.by_type("aws:lambda/function:Function"):
        places[fn.name] = json.dumps(fn.inputs["environment"])
    for where, text in places.items():
        assert isinstance(text, str), where  # a SecretValue here would mean a password made it in
        for password in passwords:
            assert password not in text, where
    assert run.secret_exports == set()


def test_db_users_written_in_a_stack_file_reach_the_program_as_the_cli_passes_them(tmp_path):
    from plan.config import cli_config_error, load_stack_config

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "Pulumi.yaml").write_text((root / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n"
        "  aws:region: us-east-1\n"
        "  rds-proxy:dbUsers:\n"
        "    - name: app\n"
        "      privileges: [SELECT, INSERT]\n"
        "    - name: reports\n"
        "      database: analytics\n"
    )
    assert cli_config_error("s", root=tmp_path) is None
    config = load_stack_config("s", root=tmp_path)
    settings = parse_settings(lambda k: config.get(f"rds-proxy:{k}"), "rds-proxy", "s")
    assert [(u.name, u.privileges, u.database) for u in settings.users.users] == [
        ("app", ("SELECT", "INSERT"), "testdb"),
        ("reports", ("SELECT",), "analytics"),
    ]


def _users_component_run(source_dir):
    from components.proxy import AuthScheme, IamAuth
    from components.users import DbUser, DbUsers, DbUsersArgs, UsersSettings
    from plan.engine import run_program

    def program():
        probe = DbUser(
            name="probe", privileges=("SHOW VIEW",), database="d", client_iam_auth=IamAuth.REQUIRED,
            client_password_auth_type=None,
        )  # fmt: skip
        DbUsers(
            "u",
            DbUsersArgs(
                subnet_ids=["subnet-1"],
                security_group_ids=["sg-1"],
                db_address="db.example",
                db_port=3306,
                master_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:m-AbCdEf",
                network_ready=[],
                settings=UsersSettings(
                    scheme=AuthScheme.NONE,
                    users=(),
                    probe_user=probe,
                    function_name="f",
                    log_retention_days=30,
                ),
                source_dir=source_dir,
            ),
        )

    run = run_program("dev", {"aws:region": "us-east-1"}, program=program)
    assert run.error is None, run.error
    return run


def test_the_rds_ca_bundle_is_shipped_and_named_in_db_ca_bundle_when_present(tmp_path):
    import io
    import zipfile

    from components.users import RDS_CA_BUNDLE

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "users_function.py").write_bytes((root / "lambda_src" / "users_function.py").read_bytes())
    without = _users_component_run(tmp_path)
    assert "DB_CA_BUNDLE" not in without.named("u-function").inputs["environment"]["variables"]
    assert any(RDS_CA_BUNDLE in w and "will fail" in w for w in without.warnings)

    (tmp_path / RDS_CA_BUNDLE).write_text(
        "-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n"
    )
    with_bundle = _users_component_run(tmp_path)
    fn = with_bundle.named("u-function").inputs
    assert fn["environment"]["variables"]["DB_CA_BUNDLE"] == f"/var/task/{RDS_CA_BUNDLE}"
    assert not [w for w in with_bundle.warnings if RDS_CA_BUNDLE in w]
    package = build_package(["users_function.py", RDS_CA_BUNDLE], tmp_path)
    assert RDS_CA_BUNDLE in zipfile.ZipFile(io.BytesIO(package)).namelist()
    assert fn["sourceCodeHash"] == base64.b64encode(hashlib.sha256(package).digest()).decode()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_user_secrets_and_the_bootstrap_log_group_use_the_stack_key_which_names_that_group(stack):
    run = users_run(stack=stack)
    key = run.named("rds-proxy-encryption-key")  # prod also has its DR replicas' key (tests/test_dr.py)
    for user in ("app", "legacy", "rdsproxy_probe", "reports"):
        assert run.named(f"rds-proxy-users-{user}-secret").inputs["kmsKeyId"] == key.outputs["arn"], user
    group = run.named("rds-proxy-users-logs").inputs
    assert group["kmsKeyId"] == key.outputs["arn"]
    assert f"log-group:{group['name']}" in json.dumps(policy_doc(key.inputs))
