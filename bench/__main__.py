"""`bench/run`: every benchmark against the sandbox on loopback, a table of figures, and `--json PATH`.

`bench/run --http` runs the team-server benchmark instead (`bench/http_scale.py`): replicas, Redis, many sessions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from bench import context, credits, footprint, http_scale, overhead, throughput, tracing
from bench.common import SIZES, UNLIMITED_RPM, Figures, Sizes, compile_sources
from bench.report import evaluate, table
from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer

BENCHMARKS = ("context", "credits", "footprint", "overhead", "throughput", "tracing")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shortened run (about a minute; --http: under five)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, to check the benchmarks still run (CI)")
    parser.add_argument(
        "--http", action="store_true", help="the team server at scale: HTTP replicas, Redis, many sessions"
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the figures as one flat JSON object")
    parser.add_argument(
        "--only", metavar="NAMES", help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all)"
    )
    return parser


async def _main(sizes: Sizes, only: tuple[str, ...]) -> Figures:
    figures: Figures = {}
    compile_sources()  # start-up is timed as an installed package would start, with its bytecode written
    if "footprint" in only:
        footprint.ensure_reference()  # before any timing: the first run installs the reference server
    with SandboxServer(SandboxConfig(people=sizes.people, **UNLIMITED_RPM)) as sandbox:
        steps: dict[str, Callable[[], Awaitable[Figures]]] = {
            "context": lambda: context.run(sandbox, sizes),
            "credits": lambda: credits.run(sandbox, sizes),
            "footprint": lambda: footprint.run(sandbox, sizes),
            "overhead": lambda: overhead.run(sizes),
            "throughput": lambda: throughput.run(sizes),
            "tracing": lambda: tracing.run(sizes),
        }
        for name, step in steps.items():
            if name in only:  # one at a time, so that no benchmark times another one's load
                figures.update(await _timed(name, step))
    return figures


async def _http(sizes: Sizes) -> Figures:
    compile_sources()
    return await _timed("http", lambda: http_scale.run(sizes.name))


async def _timed(name: str, step: Callable[[], Awaitable[Figures]]) -> Figures:
    """Run one benchmark, with the machine's 1-minute load average before it (`load_avg_<name>`)."""
    load = os.getloadavg()[0]
    print(f"bench: {name} ... (load average {load:.2f})", file=sys.stderr, flush=True)
    started = time.monotonic()
    figures = await step()
    print(f"bench: {name} done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return {f"load_avg_{name}": load} | figures


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = SIZES["smoke" if args.smoke else "quick" if args.quick else "full"]
    only = tuple(args.only.split(",")) if args.only else BENCHMARKS
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        print(f"bench/run: unknown benchmark(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.http and args.only:
        print("bench/run: --only does not apply to --http", file=sys.stderr)
        return 2
    started = time.monotonic()
    figures = anyio.run(_http, sizes) if args.http else anyio.run(_main, sizes, only)
    verdicts = [v for v in evaluate(figures, http=args.http) if v.passed is not None]
    figures["targets_met"] = sum(1 for v in verdicts if v.passed)
    figures["targets_total"] = len(verdicts)
    figures["elapsed_seconds"] = time.monotonic() - started
    print(f"\nperson-enrich-mcp benchmarks ({'http, ' if args.http else ''}{sizes.name} run)\n")
    print(table(figures, http=args.http))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        mode = f"http-{sizes.name}" if args.http else sizes.name
        args.json.write_text(json.dumps({"mode": mode, **figures}, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
