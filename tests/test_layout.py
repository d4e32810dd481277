"""The shape issue 7 asks for, held by tests: vocabulary beside its component, config read in one place,
sections handed whole, shared helpers reusable, one list of stack outputs."""

from __future__ import annotations

import ast
import dataclasses
import io
import zipfile
from pathlib import Path

import pytest

import components.credentials
import components.database
import components.networking
import components.probe
import components.proxy
import components.target
from components.lambda_package import build_package, write_package
from components.settings import Settings
from components.stack import STACK_OUTPUTS

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ROOT / "components"


def _defined_names(path: Path) -> set[str]:
    """Classes and module-level assignments a file writes itself (not imports)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (components.proxy, ["PoolProfile", "PoolSettings", "PROFILES", "IamAuth", "ClientPasswordAuthType",
                            "ProxyAuth", "ProxySettings"]),
        (components.target, ["EngineFamily", "InstanceTarget", "ClusterTarget"]),
        (components.database, ["DatabaseSettings"]),
        (components.networking, ["NetworkSettings"]),
        (components.credentials, ["CredentialsSettings"]),
        (components.probe, ["ProbeSettings"]),
    ],
)  # fmt: skip
def test_vocabulary_lives_beside_its_component(module, names):
    here = _defined_names(Path(str(module.__file__)))
    in_settings = _defined_names(COMPONENTS / "settings.py")
    for name in names:
        assert name in here, f"{name} is not defined in {module.__name__}"
        assert name not in in_settings, f"{name} is (re)defined in components/settings.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _calls_pulumi_config(path: Path) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "Config"
        for n in ast.walk(ast.parse(path.read_text()))
    )


@pytest.mark.parametrize(
    "path",
    sorted(p for p in COMPONENTS.glob("*.py") if p.name not in ("settings.py", "stack.py")),
    ids=lambda p: p.name,
)
def test_components_do_not_import_settings(path):
    """settings.py imports the components' vocabulary, not the other way round."""
    assert "components.settings" not in _imports(path)


@pytest.mark.parametrize("path", sorted(COMPONENTS.glob("*.py")), ids=lambda p: p.name)
def test_no_component_reads_config(path):
    """__main__.py makes the one pulumi.Config and hands it to Settings.from_config."""
    assert not _calls_pulumi_config(path)
    assert _calls_pulumi_config(ROOT / "__main__.py")


# A neighbour's setting a component needs before that neighbour exists: the security groups are built
# before the database, so what they admit comes from its settings, not its outputs (the second entry is
# issue 9's replicas' group on main). Anything else is a copy and fails here.
FIELD_READS_ALLOWED = {
    ("NetworkingArgs", "db_port", "database.port"),
    ("NetworkingArgs", "replica_clients", "database.read_replicas > 0"),
}


def test_the_stack_hands_each_section_whole_and_copies_no_setting_field_by_field():
    tree = ast.parse((COMPONENTS / "stack.py").read_text())
    sections = {f.name for f in dataclasses.fields(Settings) if f.name not in ("project", "stack")}
    handed: list[str] = []
    copied = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        if not (isinstance(call.func, ast.Name) and call.func.id.endswith("Args")):
            continue
        for kw in call.keywords:
            text = ast.unparse(kw.value)
            if kw.arg == "settings":
                assert text.startswith("s.") and text.count(".") == 1, f"{call.func.id}: settings={text}"
                handed.append(text[2:])
            elif text.startswith("s."):
                copied.add((call.func.id, kw.arg, text[2:]))
    assert sorted(handed) == sorted(sections)  # every section goes whole to exactly one component
    assert copied <= FIELD_READS_ALLOWED, copied - FIELD_READS_ALLOWED


def test_a_second_function_reuses_the_package_builder_unchanged(tmp_path):
    modules = ["users_function.py"]
    data = build_package(modules)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "users_function.py" in names and "lambda_function.py" not in names
    assert any(n.startswith("pymysql/") for n in names)
    assert build_package(modules) == data  # reproducible for it too
    path, digest = write_package("users", modules, build_dir=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("users-") and path.read_bytes() == data
    assert digest != write_package("probe", ["lambda_function.py"], build_dir=tmp_path)[1]


def test_the_tools_ask_only_for_outputs_the_stack_exports():
    from tools.validate_stack import REQUIRED_OUTPUTS

    assert set(REQUIRED_OUTPUTS) <= set(STACK_OUTPUTS)
    source = (ROOT / "tools" / "validate_stack.py").read_text()
    # The one list lives in components/stack.py; validate_stack names only what it reads.
    assert "STACK_OUTPUTS" not in source or "from components.stack import STACK_OUTPUTS" in source
    assert "privateSubnetIds" not in source and "dbEndpoint" not in source
