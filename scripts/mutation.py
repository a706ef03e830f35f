"""Mutation testing of the modules that hold the core's rules: how many small bugs (a
flipped comparison, a changed constant, a dropped argument) the tests catch.

    .venv/bin/python scripts/mutation.py [--module quota] [--survivors]

Each module is mutated by mutmut (installed by this script if missing) in a copy of the
repository, against only the test files that cover it (SQLite variant: the libSQL one
runs the same assertions over HTTP), and the script prints per module the mutants, how
many the tests killed, and the score; with `--survivors`, each surviving mutant's diff.
Not part of CI (minutes per module); latest figures in the README's Tests section.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"
MUTMUT_VERSION = "3.8.1"  # as pyproject.toml's `mutation` extra
# The rules and the tests that pin them down.
TARGETS: dict[str, tuple[str, list[str]]] = {
    "recipe": ("lora_core/generation/recipe.py", ["tests/generation/test_recipe.py"]),
    "axes": ("lora_core/lab/axes.py", ["tests/lab/test_axes.py"]),
    "prompts": ("lora_core/generation/prompts.py", ["tests/generation/test_prompts.py",
                                                    "tests/generation/test_service.py"]),
    "quota": ("lora_core/generation/quota.py", ["tests/generation/test_quota.py"]),
    "filters": ("lora_core/history/filters.py", ["tests/history/test_history.py"]),
    "favorites": ("lora_core/gallery/favorites.py", ["tests/gallery/test_favorites.py"]),
    "registry": ("lora_core/training/registry.py", ["tests/training/test_registry.py"]),
    "settings": ("lora_core/settings.py", ["tests/test_settings.py"]),
    "lifecycle": ("lora_core/training/lifecycle.py", ["tests/training/test_lifecycle.py"]),
    "recovery": ("lora_core/generation/recovery.py", ["tests/generation/test_recovery.py",
                                                      "tests/generation/test_service.py"]),
    "service": ("lora_core/generation/service.py", ["tests/generation/test_service.py",
                                                    "tests/generation/test_recovery.py"]),
    "sweeps": ("lora_core/lab/sweeps.py", ["tests/lab/test_sweeps.py"]),
}  # fmt: skip
_STATUS = re.compile(r"^\s*(?P<name>\S+): (?P<status>[a-z ]+)$")


@dataclass
class Outcome:
    module: str
    statuses: dict[str, str]
    survivors: list[str]

    @property
    def killed(self) -> int:
        return sum(1 for status in self.statuses.values() if status == "killed")

    @property
    def score(self) -> float:
        return self.killed / len(self.statuses) if self.statuses else 0.0


def ensure_mutmut() -> None:
    if not MUTMUT.exists():
        subprocess.run(
            [str(PYTHON), "-m", "pip", "install", "-q", f"mutmut=={MUTMUT_VERSION}"], check=True
        )


def workspace(module: str, tests: list[str]) -> Path:
    """A copy of the repository's tracked files (commit or `git add` new tests first),
    configured to mutate `module` only."""
    folder = Path(tempfile.mkdtemp(prefix="mutation-"))
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            target = folder / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    with (folder / "pyproject.toml").open("a") as config:
        config.write(
            "\n[tool.mutmut]\n"
            'source_paths = ["lora_core"]\n'
            f'only_mutate = ["{module}"]\n'
            f"pytest_add_cli_args_test_selection = {tests!r}\n".replace("'", '"')
            + 'pytest_add_cli_args = ["-p", "no:randomly", "-q", "-x", "-k", "not libsql"]\n'
            'also_copy = ["tests", "app_pages", "ui", "streamlit_app.py", "deploy", "static",'
            ' ".streamlit"]\n'
        )
    return folder


def mutate(name: str, *, show_survivors: bool) -> Outcome:
    module, tests = TARGETS[name]
    folder = workspace(module, tests)
    try:
        run = subprocess.run([str(MUTMUT), "run"], cwd=folder, capture_output=True, text=True)
        if run.returncode != 0:  # e.g. the covering tests fail, or a test file is untracked
            raise SystemExit(f"mutmut could not run for {module}:\n{run.stderr[-2000:]}")
        listing = subprocess.run(
            [str(MUTMUT), "results", "--all", "true"], cwd=folder, capture_output=True, text=True
        ).stdout
        statuses = {
            found["name"]: found["status"].strip()
            for line in listing.splitlines()
            if (found := _STATUS.match(line))
        }
        survivors = [mutant for mutant, status in statuses.items() if status != "killed"]
        diffs = []
        if show_survivors:
            for mutant in survivors:
                diffs.append(
                    subprocess.run(
                        [str(MUTMUT), "show", mutant], cwd=folder, capture_output=True, text=True
                    ).stdout
                )
        listed = [f"{mutant}: {statuses[mutant]}" for mutant in survivors]
        return Outcome(module, statuses, diffs or listed)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    arguments = parser.parse_args()
    ensure_mutmut()
    outcomes = [
        mutate(name, show_survivors=arguments.survivors)
        for name in arguments.module or list(TARGETS)
    ]
    print("| module | mutants | killed | not killed (by status) | score |")
    print("| --- | --- | --- | --- | --- |")
    for outcome in outcomes:
        others = Counter(status for status in outcome.statuses.values() if status != "killed")
        detail = ", ".join(f"{count} {status}" for status, count in others.most_common())
        print(
            f"| {outcome.module} | {len(outcome.statuses)} | {outcome.killed} | {detail or '—'} "
            f"| {outcome.score:.0%} |"
        )
    for outcome in outcomes:
        if outcome.survivors:
            print(f"\n## {outcome.module}: not killed\n")
            print("\n".join(outcome.survivors))


if __name__ == "__main__":
    main()
