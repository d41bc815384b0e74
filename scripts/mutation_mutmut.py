"""mutmut 3's command line with three changes (run by scripts/mutation, never on its own).

1. Prose strings are not mutated. A string literal with a space in it is a message for a person or a model (an
   error, a note, a breakdown); which words it holds changes no credit, no stored byte and no request, and wrapping
   it in "XX" makes a mutant only a test pinning the exact wording could kill. Strings without a space (JSON keys,
   field paths, endpoint names, statuses, separators) carry data and are mutated as usual.
2. Mutants listed in scripts/mutation_equivalent.txt, and those that only change the type a `typing.cast` names,
   are marked skipped before the run instead of being run: each would survive every test it is given, at the cost
   of the whole selection.
3. A mutant's tests run fastest first, so a killed mutant stops early (pytest runs with -x).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import libcst as cst
import mutation  # scripts/mutation.py, beside this file
import mutmut.__main__ as mutmut_main
from mutmut.mutation import mutators
from mutmut.state import state
from mutmut.workers.isolation import ForkServerRunner

_operator_string = mutators.operator_string


def _data_strings_only(node: cst.BaseString) -> Iterable[cst.BaseString]:
    if isinstance(node, cst.SimpleString) and " " in str(node.evaluated_value):
        return
    yield from _operator_string(node)


# file_mutation imported the list itself, so it is changed in place.
operators = mutators.mutation_operators
assert isinstance(operators, list)
operators[:] = [(kind, _data_strings_only if op is _operator_string else op) for kind, op in operators]

_collect = mutmut_main.collect_source_file_mutation_data
_EQUIVALENT_CODE = 34  # mutmut's "skipped"


def _collect_without_equivalents(*, mutant_names: tuple[str, ...] | list[str]) -> Any:
    mutants, by_path = _collect(mutant_names=mutant_names)
    equivalent = {entry.key for entry in mutation.read_equivalents()}
    known = {m.name: m for m in mutation.mutants_in(Path("mutants").resolve())}
    skip = {name for name, m in known.items() if m.key in equivalent or mutation.is_cast_only(m)}
    kept: list[Any] = []
    for data, name, result in mutants:
        if result is None and name in skip:
            data.exit_code_by_key[name] = _EQUIVALENT_CODE
            data.save()
            result = _EQUIVALENT_CODE
        kept.append((data, name, result))
    return kept, by_path


mutmut_main.collect_source_file_mutation_data = _collect_without_equivalents

_submit = ForkServerRunner.submit


def _submit_fastest_first(
    self: ForkServerRunner, mutant_name: str, tests: list[str], cpu_time_limit: int, estimated_time: float
) -> None:
    durations = state().duration_by_test
    ordered = sorted(tests, key=lambda test: (durations.get(test, 0.0), test))
    _submit(self, mutant_name, ordered, cpu_time_limit, estimated_time)


ForkServerRunner.submit = _submit_fastest_first  # type: ignore[method-assign]

if __name__ == "__main__":
    mutmut_main.cli()
