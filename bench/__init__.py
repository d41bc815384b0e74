"""Benchmarks of person-enrich-mcp against the embedded sandbox: run them all with `bench/run`.

Every figure is printed next to its target; `--json PATH` writes the same figures as one flat object.
See docs/benchmarks.md for what each figure measures and how.
"""
