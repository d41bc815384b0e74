"""The README's test command does its own set-up: `scripts/install-system-packages`, run by `./scripts/test`.

Each branch runs the real script with a PATH of stand-ins for the programs it asks about (`id`, `sudo`,
`apt-get`, `python3`, `redis-server`), so no test needs root or changes the machine. The stand-in `apt-get`
records how it was called and "installs" by putting the program on that PATH, as the Debian package does.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install-system-packages"
AGAIN = "then run ./scripts/test again."


@dataclass
class Machine:
    """A PATH of stand-ins, and what the stand-in apt-get was asked to do."""

    bin: Path
    state: Path

    def add(self, name: str, body: str) -> None:
        program = self.bin / name
        program.write_text(f"#!/bin/bash\n{body}\n", encoding="utf-8")
        program.chmod(0o755)

    def link(self, name: str, target: str) -> None:
        (self.bin / name).symlink_to(target)

    def run(self) -> subprocess.CompletedProcess[str]:
        env = {"PATH": str(self.bin), "STATE": str(self.state), "BIN": str(self.bin)}
        return subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)

    def apt_calls(self) -> list[str]:
        log = self.state / "apt.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    """Debian as root, with a python3 that has venv and no redis-server: the state of a fresh CI machine."""
    found = Machine(tmp_path / "bin", tmp_path / "state")
    found.bin.mkdir()
    found.state.mkdir()
    for tool in ("env", "cat", "chmod", "touch"):  # what the stand-ins themselves use
        found.link(tool, f"/usr/bin/{tool}")
    found.link("python3", sys.executable)
    found.add("id", 'echo "$(cat "$STATE/uid" 2>/dev/null || echo 0)"')
    found.add("sudo", 'echo sudo >> "$STATE/sudo.log"; VIA_SUDO=1 exec "$@"')
    found.add(
        "apt-get",
        """echo "${VIA_SUDO:+sudo }apt-get $*" >> "$STATE/apt.log"
[ -e "$STATE/apt-fails" ] && { echo "E: Unable to locate package" >&2; exit 100; }
if [ "$1" = install ]; then
  for package in "$@"; do
    case "$package" in
      redis-server) printf '#!/bin/bash\\n' > "$BIN/redis-server"; chmod +x "$BIN/redis-server" ;;
      python3-venv) touch "$STATE/venv-installed" ;;
    esac
  done
fi""",
    )
    return found


def _one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) >= 1, stderr
    last = lines[-1]
    assert last.startswith("scripts/test: ") and last.endswith(AGAIN), last
    assert ". " not in last.removesuffix(AGAIN).replace("e.g. ", ""), f"more than one sentence: {last}"
    return last


def test_nothing_is_installed_when_redis_server_and_venv_are_already_there(machine: Machine) -> None:
    machine.add("redis-server", "exit 0")
    done = machine.run()
    assert (done.returncode, done.stderr) == (0, "")
    assert machine.apt_calls() == []


def test_root_installs_a_missing_redis_server_with_apt_get(machine: Machine) -> None:
    done = machine.run()
    assert done.returncode == 0, done.stderr
    assert machine.apt_calls() == ["apt-get update -qq", "apt-get install -y -qq redis-server"]
    assert (machine.bin / "redis-server").exists()
    assert not (machine.state / "sudo.log").exists()


def test_a_user_with_sudo_installs_through_sudo(machine: Machine) -> None:
    (machine.state / "uid").write_text("1000", encoding="utf-8")
    done = machine.run()
    assert done.returncode == 0, done.stderr
    assert machine.apt_calls() == ["sudo apt-get update -qq", "sudo apt-get install -y -qq redis-server"]
    assert "with sudo apt-get" in done.stderr


def test_a_python3_without_venv_gets_python3_venv_in_the_same_apt_call(machine: Machine) -> None:
    (machine.bin / "python3").unlink()
    real = shlex.quote(sys.executable)
    no_venv_until_installed = 'case "$*" in *ensurepip*) [ -e "$STATE/venv-installed" ] || exit 1;; esac'
    machine.add("python3", f'{no_venv_until_installed}\nexec {real} "$@"')
    done = machine.run()
    assert done.returncode == 0, done.stderr
    assert machine.apt_calls()[-1] == "apt-get install -y -qq python3-venv redis-server"


def test_two_missing_packages_are_named_together_in_one_sentence(machine: Machine) -> None:
    (machine.bin / "python3").unlink()
    machine.add("python3", f'case "$*" in *ensurepip*) exit 1;; esac\nexec {shlex.quote(sys.executable)} "$@"')
    (machine.state / "uid").write_text("1000", encoding="utf-8")
    (machine.bin / "sudo").unlink()
    done = machine.run()
    sentence = _one_sentence(done.stderr)
    assert "python3-venv and redis-server are missing" in sentence
    assert "as root run apt-get install -y python3-venv redis-server" in sentence


def test_without_root_or_sudo_it_stops_with_one_sentence_naming_the_package(machine: Machine) -> None:
    (machine.state / "uid").write_text("1000", encoding="utf-8")
    (machine.bin / "sudo").unlink()
    done = machine.run()
    assert done.returncode == 1
    sentence = _one_sentence(done.stderr)
    assert "as root run apt-get install -y redis-server" in sentence
    assert machine.apt_calls() == []


def test_without_apt_get_it_stops_with_one_sentence_naming_redis(machine: Machine) -> None:
    (machine.bin / "apt-get").unlink()
    done = machine.run()
    assert done.returncode == 1
    sentence = _one_sentence(done.stderr)
    assert "there is no apt-get here" in sentence and "install Redis, so that redis-server is on the PATH" in sentence


def test_a_failed_apt_get_is_one_sentence_naming_the_package_and_the_command(machine: Machine) -> None:
    (machine.state / "apt-fails").touch()
    done = machine.run()
    assert done.returncode == 1
    assert "E: Unable to locate package" in done.stderr  # apt-get's own words stay visible above ours
    assert "run apt-get install -y redis-server yourself" in _one_sentence(done.stderr)


def test_a_python_older_than_3_11_is_named_before_anything_is_installed(machine: Machine) -> None:
    (machine.bin / "python3").unlink()
    machine.add("python3", "exit 1")
    done = machine.run()
    assert done.returncode == 1
    assert "Python 3.11 or newer" in _one_sentence(done.stderr)
    assert machine.apt_calls() == []


def _commands(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_the_readme_test_command_which_provisions_before_it_builds_anything() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme[readme.index("## Quickstart") : readme.index("### Check your key")]
    assert "\n./scripts/test\n" in quickstart
    ci = _commands(ROOT / ".ci" / "run")
    assert ci[-1] == "exec ./scripts/test" and not [c for c in ci if "apt-get" in c or "redis" in c]
    steps = _commands(ROOT / "scripts" / "test")
    first_venv = next(i for i, step in enumerate(steps) if "-m venv" in step)
    assert steps.index("scripts/install-system-packages") < first_venv
