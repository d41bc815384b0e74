"""Profile the stdio server on the hot path: `.venv/bin/python -m bench.profile [--ids 25] [--seconds 20]`.

Starts the sandbox, the server over stdio and a stream of `enrich_person_by_url` calls, each for people never
asked for before (so each is a cache miss that goes upstream and writes the cache, as in the overhead benchmark;
`--cache-off` instead repeats the same people with the cache off), while py-spy (installed once into
`bench/.venv-prof`, never into the project) samples the server process. Prints the functions with the most
samples, inclusive and on their own, so the figures can be traced to code.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from bench.common import (
    ROOT,
    SERVER_COMMAND,
    UNLIMITED_RPM,
    child_pid,
    new_key,
    sample_identifiers,
    server_env,
    stdio_params,
)
from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer

PY_SPY_SPEC = "py-spy==0.4.3"
PROFILE_VENV = ROOT / "bench" / ".venv-prof"
PY_SPY = PROFILE_VENV / "bin" / "py-spy"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^)]*?)(?::\d+)?\)$")


def ensure_py_spy() -> None:
    """Install py-spy into its own venv once."""
    if PY_SPY.exists():
        return
    subprocess.run([sys.executable, "-m", "venv", str(PROFILE_VENV)], check=True)
    subprocess.run(
        [
            str(PROFILE_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            PY_SPY_SPEC,
        ],
        check=True,
        capture_output=True,
    )


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(collapsed: str, top: int) -> str:
    """Top functions by inclusive and by own samples, from py-spy's collapsed-stack output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


async def _profile(ids: int, seconds: float, top: int, output: Path, cache_off: bool) -> None:
    people = 20_000
    with SandboxServer(SandboxConfig(people=people, **UNLIMITED_RPM)) as sandbox:
        pool = sample_identifiers(sandbox.url, "url", people)
        fresh = itertools.cycle(pool)  # 20,000 people: enough never to come round again in a profile's span
        overrides = {"PERSON_ENRICH_CACHE_TTL": "0"} if cache_off else {}
        env = server_env(sandbox.url, new_key("profile"), **overrides)

        def arguments() -> dict[str, Any]:
            urls = pool[:ids] if cache_off else [next(fresh) for _ in range(ids)]
            return {"professional_network_profile_urls": urls}

        async with Client(stdio_params(env), mode="legacy", cache=None) as client:
            for _ in range(20):
                await client.call_tool("enrich_person_by_url", arguments())
            pid = child_pid(SERVER_COMMAND)
            command = [str(PY_SPY), "record", "--pid", str(pid), "--rate", "400", "--format", "raw"]
            command += ["--duration", str(int(seconds)), "--output", str(output), "--nonblocking"]
            spy = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            calls = 0
            while spy.returncode is None:
                await client.call_tool("enrich_person_by_url", arguments())
                calls += 1
            await spy.wait()
    print(f"{calls} calls of {ids} identifiers profiled")
    print(summarise(output.read_text(), top))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--ids", type=int, default=25, help="identifiers per call (default 25)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to sample (default 20)")
    parser.add_argument("--top", type=int, default=40, help="functions to list (default 40)")
    parser.add_argument("--cache-off", action="store_true", help="cache off, the same people every call")
    args = parser.parse_args()
    ensure_py_spy()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir:
        anyio.run(_profile, args.ids, args.seconds, args.top, Path(workdir, "profile.txt"), args.cache_off)
    return 0


if __name__ == "__main__":
    sys.exit(main())
