"""mutmut 3's command line, with one change of operator: prose strings are not mutated (run by scripts/mutation).

A string literal with a space in it is a message for a person or a model (an error, a note, a breakdown); which
words it holds changes no credit, no stored byte and no request, and wrapping it in "XX" makes a mutant only a
test pinning the exact wording could kill. Strings without a space (JSON keys, field paths, endpoint names,
statuses, separators) carry data and are mutated as usual.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst
from mutmut.__main__ import cli
from mutmut.mutation import mutators

_operator_string = mutators.operator_string


def _data_strings_only(node: cst.BaseString) -> Iterable[cst.BaseString]:
    if isinstance(node, cst.SimpleString) and " " in str(node.evaluated_value):
        return
    yield from _operator_string(node)


# file_mutation imported the list itself, so it is changed in place.
operators = mutators.mutation_operators
assert isinstance(operators, list)
operators[:] = [(kind, _data_strings_only if op is _operator_string else op) for kind, op in operators]

if __name__ == "__main__":
    cli()
