"""What Streamlit Community Cloud needs from the repository, checked without deploying."""

from __future__ import annotations

import re
import tomllib

from lora_core.settings import Settings
from tests.conftest import APP_ROOT


def requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_requirements_txt_pins_exactly_the_projects_dependencies():
    project = tomllib.loads((APP_ROOT / "pyproject.toml").read_text())["project"]

    assert requirement_lines((APP_ROOT / "requirements.txt").read_text()) == project["dependencies"]


def test_the_entry_point_is_streamlit_app_py_at_the_root():
    assert (APP_ROOT / "streamlit_app.py").is_file()
    assert (APP_ROOT / ".streamlit" / "config.toml").is_file()


def test_the_secrets_example_names_only_real_settings():
    example = (APP_ROOT / ".streamlit" / "secrets.toml.example").read_text()
    # Every commented-out `NAME = value` line, uncommented, must parse and be a setting.
    lines = [line.lstrip("# ") for line in example.splitlines()]
    assignments = [line for line in lines if "=" in line and line.split("=")[0].strip().isupper()]
    names = {line.split("=")[0].strip() for line in assignments}

    assert {"TURSO_DATABASE_URL", "TURSO_AUTH_TOKEN", "FAL_KEY", "STORAGE_BACKEND"} <= names
    assert names <= {name.upper() for name in Settings.model_fields}
    for line in assignments:
        tomllib.loads(line)  # valid TOML once uncommented


def test_every_library_the_app_imports_is_declared():
    """Not only through another package: a library imported directly is pinned directly."""
    import ast
    import importlib.metadata
    import sys

    declared = {
        re.split(r"[\[=<>]", requirement)[0].lower().replace("_", "-")
        for requirement in tomllib.loads((APP_ROOT / "pyproject.toml").read_text())["project"][
            "dependencies"
        ]
    } | {"libsql"}  # the optional replica extra, imported only when configured
    distributions = importlib.metadata.packages_distributions()
    sources = [APP_ROOT / "streamlit_app.py"]
    for folder in ("lora_core", "ui", "app_pages"):
        sources += (APP_ROOT / folder).rglob("*.py")
    imported: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"lora_core", "ui", "__future__"}
    missing = {
        name: distributions.get(name)
        for name in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(name, [name])} & declared
    }
    assert missing == {}
