"""Mutation testing of the modules where a silent bug costs money or leaks data (run by `scripts/mutation`).

Each group of modules is mutated by mutmut 3 in a work directory of its own (`.mutation/<group>/`), against the
test files that exercise it; within those, mutmut runs for each mutant only the tests that call the mutated
function. Afterwards every mutant is classified, the committed list of equivalent mutants
(`scripts/mutation_equivalent.txt`) is applied, and one line per module says: mutants, killed, equivalent,
survived, kill rate (killed / non-equivalent). Survivors are written to `.mutation/survivors.txt` with their diffs.

Usage: scripts/mutation [GROUP ...] [--jobs N] [--threshold PCT] [--survivors] [--report-only] [--list]
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENT_FILE = ROOT / "scripts" / "mutation_equivalent.txt"
PACKAGE = "src/person_enrich_mcp/"
# Lines whose only job is to log: breaking them changes no credit, no result and no stored byte.
NOT_MUTATED_LINES = (r"\blogger\.(debug|info|warning|error|exception)\(", r"\blog\.(debug|info|warning|error)\(")


@dataclass(frozen=True)
class Group:
    """Modules mutated together, and the test files that exercise them."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]


# Which tests can notice a broken line of which module. A test file outside a group's list is never run for it:
# keep the lists to the files that drive the module (its own unit tests and the flows through it). A surviving
# mutant runs every selected test that calls its function, so a slow file costs minutes per survivor: an entry
# may name one test (`file.py::test_name`) instead of a whole file.
GROUPS: dict[str, Group] = {
    "pricing": Group(("pricing.py",), ("test_pricing.py", "test_account.py", "test_enrich_tools.py")),
    "account": Group(("account.py",), ("test_account.py", "test_account_edges.py", "test_contract_flows.py")),
    "budget": Group(("budget.py",), ("test_budget.py", "test_budget_flows.py")),
    "confirm": Group(("tools/confirm.py",), ("test_budget_flows.py", "test_untrusted_text.py")),
    "cache": Group(("cache.py",), ("test_cache.py",)),
    "identifiers": Group(("identifiers.py",), ("test_identifiers.py",)),
    "routes": Group(("api/routes.py",), ("test_routes.py", "test_enrich_tools.py")),
    "state": Group(("state/*.py",), ("test_state_contract.py", "test_state_erasure.py", "test_state_edges.py")),
    "client": Group(("api/client.py",), ("test_api_client.py",)),
    "limiter": Group(("api/limiter.py",), ("test_limiter_fairness.py", "test_api_client.py")),
    "guard": Group(("privacy/guard.py",), ("test_privacy_units.py", "test_privacy_optouts.py")),
    "search_page": Group(("tools/search_page.py",), ("test_search_tool.py", "test_search_page_paths.py")),
    # The fault matrix (test_reliability_faults.py) takes minutes per surviving mutant, and nearly every test here
    # calls the pipeline's main functions: a survivor costs the whole selection (about 20 s).
    "enrichment": Group(
        ("tools/enrichment.py",),
        (
            "test_pricing.py",
            "test_enrich_tools.py",
            "test_empty_answers.py",
            "test_contract_flows.py",
            "test_enrichment_assembly.py",
            "test_enrichment_emails.py",
        ),
    ),
    "upstream": Group(
        ("tools/upstream.py",),
        (
            "test_pricing.py",
            "test_enrich_tools.py",
            "test_empty_answers.py",
            "test_contract_flows.py",
            "test_upstream_steps.py",
        ),
    ),
}

KILLED = "killed"
SURVIVED = "survived"
NO_TESTS = "no tests"
TIMEOUT = "timeout"
NOT_RUN = "not run"
SKIPPED = "skipped"  # listed as equivalent: not run at all (mutation_mutmut.py marks them before the run)
# mutmut's exit codes per mutant (mutmut/__main__.py `status_by_exit_code`).
STATUS = {
    **{1: KILLED, 3: KILLED, 37: KILLED, -11: KILLED, -9: KILLED, 0: SURVIVED, 5: NO_TESTS, 33: NO_TESTS, 34: SKIPPED},
    **dict.fromkeys((36, -24, 24, 152, 255), TIMEOUT),
}


@dataclass(frozen=True)
class Mutant:
    """One mutant: where it is, its diff, and how the tests fared."""

    name: str
    module: str  # e.g. person_enrich_mcp.tools.enrichment
    function: str  # e.g. Runner.send
    removed: str
    added: str
    status: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (f"{self.module}.{self.function}", self.removed, self.added)

    def describe(self) -> str:
        return f"{self.module}.{self.function} | {self.removed} => {self.added}"


@dataclass
class Tally:
    mutants: int = 0
    killed: int = 0
    timeouts: int = 0
    equivalent: int = 0
    survived: int = 0
    not_run: int = 0
    survivors: list[Mutant] = field(default_factory=list[Mutant])

    @property
    def rate(self) -> float:
        considered = self.mutants - self.equivalent - self.not_run
        return 100.0 * self.killed / considered if considered else 100.0


# --- running mutmut --------------------------------------------------------------------------------------------------


def _pyproject(group: Group) -> str:
    """The project's pyproject.toml (pytest settings included) plus this group's mutmut section."""
    base = (ROOT / "pyproject.toml").read_text()
    modules = [PACKAGE + m for m in group.modules]
    tests = [f"tests/{t}" for t in group.tests]
    lines = [
        "",
        "[tool.mutmut]",
        'source_paths = ["src/"]',
        f"only_mutate = {json.dumps(modules)}",
        f"pytest_add_cli_args_test_selection = {json.dumps([*tests, '-m', 'not slow'])}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]',
        f"do_not_mutate_patterns = {json.dumps(list(NOT_MUTATED_LINES))}",
        # Workers fork from a server that only collected the tests: nothing a clean run cached (an lru_cache, an
        # account read) leaks into a mutant's run.
        'process_isolation = "forkserver"',
        "use_git_change_detection = false",
    ]
    return base + "\n".join(lines) + "\n"


def run_group(name: str, group: Group, jobs: int, *, again: list[str] | None = None) -> float:
    """Mutate one group from scratch, or (`again`) re-test only those mutants of its last run; returns seconds."""
    work = WORK / name
    missing = [t for t in group.tests if not (ROOT / "tests" / t.split("::")[0]).is_file()]
    if missing:
        sys.exit(f"group {name} lists test files that do not exist: {', '.join(missing)}")
    if again is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        (work / "src").symlink_to(ROOT / "src")
        (work / "tests").symlink_to(ROOT / "tests")
    else:
        # Which tests call which function is re-learnt: a test edited since the last run may now reach a survivor.
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    pyproject = _pyproject(group)
    if not (work / "pyproject.toml").exists() or (work / "pyproject.toml").read_text() != pyproject:
        (work / "pyproject.toml").write_text(pyproject)
    started = time.monotonic()
    with (work / "mutmut.log").open("w") as log:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "mutation_mutmut.py"),
                "run",
                "--max-children",
                str(jobs),
                *(again or []),
            ],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        tail = (work / "mutmut.log").read_text(errors="replace")[-3000:]
        sys.exit(f"mutmut failed for group {name} (exit {done.returncode}); the end of {work}/mutmut.log:\n{tail}")
    return seconds


# --- reading the results ---------------------------------------------------------------------------------------------

_TRAILING_COMMENT = re.compile(r"\s+# [^\"']*$")
_MUTANT_RE = re.compile(r"^(?P<function>x.+?)__mutmut_(?P<n>\d+)$")


def _functions(source: str) -> dict[str, str]:
    """Every top-level function and method of a mutated module, by its mangled name, as source text."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found: dict[str, str] = {}
    # By line numbers, not `ast.get_source_segment`: that re-splits the whole file per function, and a mutated
    # module holds thousands of functions.
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            found[node.name] = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return found


def _diff(original: str, mutated: str) -> tuple[str, str]:
    """The lines a mutant changed: (removed, added), each joined with ' / ' and stripped of indentation."""
    removed: list[str] = []
    added: list[str] = []
    for line in difflib.unified_diff(original.splitlines(), mutated.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        (removed if line.startswith("-") else added).append(_TRAILING_COMMENT.sub("", line[1:]).strip())
    return " / ".join(removed), " / ".join(added)


def _demangle(mangled: str) -> str:
    """`xǁRunnerǁsend` -> `Runner.send`, `x_route` -> `route`."""
    if mangled.startswith("xǁ"):
        return mangled[2:].replace("ǁ", ".")
    return mangled[2:]


def mutants_of(name: str) -> Iterator[Mutant]:
    """Every mutant of one group's last run, with its status and diff."""
    return mutants_in(WORK / name / "mutants")


def mutants_in(mutants_dir: Path) -> Iterator[Mutant]:
    """Every mutant mutmut made in `mutants_dir`, with its status and diff."""
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        source_path = meta.with_suffix("")
        module = ".".join(source_path.relative_to(mutants_dir / "src").with_suffix("").parts)
        functions = _functions(source_path.read_text())
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        for key, code in sorted(codes.items()):
            local = key.rsplit(".", 1)[1] if "." in key else key
            match = _MUTANT_RE.match(local)
            if match is None:
                continue
            mangled = match.group("function")
            original = functions.get(f"{mangled}__mutmut_orig", "")
            mutated = functions.get(local, "")
            removed, added = _diff(original.replace(f"{mangled}__mutmut_orig", "f"), mutated.replace(local, "f"))
            status = STATUS.get(code, NOT_RUN) if code is not None else NOT_RUN
            yield Mutant(key, module, _demangle(mangled), removed, added, status)


@dataclass(frozen=True)
class Equivalent:
    key: tuple[str, str, str]
    why: str
    line: int


def read_equivalents(path: Path = EQUIVALENT_FILE) -> list[Equivalent]:
    """The committed equivalent mutants: `function | removed => added | why`, one a line (# comments)."""
    entries: list[Equivalent] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        # The function has no " | " and the reason is last; the change between them may hold one (`X | None`).
        function, _, rest = text.partition(" | ")
        change, _, why = rest.rpartition(" | ")
        if not function or " => " not in change or not why.strip():
            sys.exit(f"{path}:{number}: expected `function | removed => added | why`, got: {text}")
        removed, added = (s.strip() for s in change.split(" => ", 1))
        entries.append(Equivalent((function.strip(), removed, added), why.strip(), number))
    return entries


def _erase_cast_types(text: str) -> str:
    """`text` with the type argument of every `cast(T, value)` replaced by `_` (brackets in T respected)."""
    out: list[str] = []
    index = 0
    while (found := text.find("cast(", index)) != -1:
        out.append(text[index : found + 5])
        depth, end = 0, found + 5
        while end < len(text) and not (depth == 0 and text[end] in ",)"):
            depth += text[end] in "([{"
            depth -= text[end] in ")]}"
            end += 1
        out.append("_")
        index = end
    out.append(text[index:])
    return "".join(out)


def is_cast_only(mutant: Mutant) -> bool:
    """A mutant that only changes what `typing.cast` is told the type is: `cast` returns its value unchanged at
    run time, so such a mutant is equivalent by construction (counted as equivalent without a line in the list)."""
    return mutant.removed != mutant.added and _erase_cast_types(mutant.removed) == _erase_cast_types(mutant.added)


def tally(names: Iterable[str], equivalents: list[Equivalent]) -> tuple[dict[str, Tally], list[Equivalent]]:
    """Per-module counts over the groups' last runs, and the equivalents that matched no mutant (stale)."""
    by_key = {e.key: e for e in equivalents}
    used: set[tuple[str, str, str]] = set()
    tallies: dict[str, Tally] = {}
    for name in names:
        for mutant in mutants_of(name):
            t = tallies.setdefault(mutant.module, Tally())
            t.mutants += 1
            if mutant.status in (KILLED, TIMEOUT):
                t.killed += 1
                t.timeouts += mutant.status == TIMEOUT
            elif mutant.key in by_key:
                t.equivalent += 1
                used.add(mutant.key)
            elif is_cast_only(mutant):
                t.equivalent += 1
            elif mutant.status == NOT_RUN:
                t.not_run += 1
            else:
                t.survived += 1
                t.survivors.append(mutant)
    stale = [e for e in equivalents if e.key not in used and any(e.key[0].startswith(m) for m in tallies)]
    return tallies, stale


def report(tallies: dict[str, Tally], stale: list[Equivalent], threshold: float) -> bool:
    """Print the table and write the survivors; True when every module reaches the threshold."""
    width = max((len(m) for m in tallies), default=10)
    print(f"{'module':<{width}}  mutants  killed  equivalent  survived  kill rate")
    total = Tally()
    ok = True
    for module in sorted(tallies):
        t = tallies[module]
        extra = f"  ({t.not_run} not run)" if t.not_run else ""
        print(
            f"{module:<{width}}  {t.mutants:>7}  {t.killed:>6}  {t.equivalent:>10}  {t.survived:>8}  "
            f"{t.rate:>8.1f}%{extra}"
        )
        ok &= t.rate >= threshold and not t.not_run
        for attr in ("mutants", "killed", "equivalent", "survived", "not_run"):
            setattr(total, attr, getattr(total, attr) + getattr(t, attr))
        total.survivors.extend(t.survivors)
    print(
        f"{'all':<{width}}  {total.mutants:>7}  {total.killed:>6}  {total.equivalent:>10}  {total.survived:>8}  "
        f"{total.rate:>8.1f}%"
    )
    out = WORK / "survivors.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("".join(f"{m.describe()}    [{m.status}; {m.name}]\n" for m in total.survivors))
    if total.survivors:
        print(f"{len(total.survivors)} survivors (function | removed => added) in {out.relative_to(ROOT)}")
    for entry in stale:
        print(f"stale equivalent ({EQUIVALENT_FILE.name}:{entry.line}, matches no mutant): {' | '.join(entry.key)}")
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--threshold", type=float, default=95.0, help="kill rate every module must reach (percent)")
    parser.add_argument("--report-only", action="store_true", help="report the last runs without running mutmut")
    parser.add_argument("--list", action="store_true", help="list the groups, their modules and tests, and stop")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="re-test only the last run's survivors (and mutants not run yet), e.g. after adding tests",
    )
    parser.add_argument("--resume", action="store_true", help="test only the mutants a stopped run did not reach")
    args = parser.parse_args(argv)
    names = args.groups or list(GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; groups: {', '.join(GROUPS)}")
    if args.list:
        for name in names:
            print(f"{name}: {', '.join(GROUPS[name].modules)}  <-  {', '.join(GROUPS[name].tests)}")
        return 0
    started = time.monotonic()
    if not args.report_only:
        equivalents = {e.key for e in read_equivalents()}
        for name in names:
            again = None
            if (args.survivors or args.resume) and (WORK / name / "mutants").is_dir():
                wanted = (NOT_RUN,) if args.resume else (SURVIVED, NO_TESTS, NOT_RUN)
                again = [
                    m.name
                    for m in mutants_of(name)
                    if m.status in wanted and m.key not in equivalents and not is_cast_only(m)
                ]
                if not again:
                    print(f"group {name}: nothing to re-test", flush=True)
                    continue
            seconds = run_group(name, GROUPS[name], args.jobs, again=again)
            what = f"{len(again)} mutants re-tested" if again is not None else "full run"
            print(f"group {name}: {seconds:.0f} s ({what})", flush=True)
    tallies, stale = tally(names, read_equivalents())
    ok = report(tallies, stale, args.threshold)
    for name in names:
        if not any(mutants_of(name)):
            print(f"group {name} ({', '.join(GROUPS[name].modules)}): not run")
            ok = False
    if not args.report_only:
        print(f"total {time.monotonic() - started:.0f} s with {args.jobs} workers")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
