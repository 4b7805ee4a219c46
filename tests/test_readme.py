"""The README runs as written (issue 15).

Every fenced ```bash and ```python block of README.md runs, in order, in one temporary working
directory with this venv's ``bin`` first on PATH (so ``geobridge`` and ``python`` are the
project's) and the model hub offline. A bash block runs command by command (a line ending in a
backslash continues the command; ``#`` lines are comments); a python block runs as one script.
Every command must exit 0.

The README can mark a block with an HTML comment on the line right before its fence:

``<!-- readme-test: skip — REASON -->``
    not run; the reason (required) is shown in pytest's summary. Only for what cannot run
    here: GPUs, several machines, weights that cannot exist offline, ``make demo`` /
    ``make test`` themselves (CI runs them), and the like.
``<!-- readme-test: setup -->``
    a block the README adds to define what later blocks name (tiny datasets in their real
    layouts, ...); it runs like any other block.
``<!-- readme-test: server -->``
    each command is a long-running server: it is started with ``--port`` set to a free port
    (so a busy 8000 does not fail the test), must answer ``GET /health`` with 200 within
    SERVER_START_S, and is then stopped.

A block that fails stops the walk: later blocks are skipped (they would fail for the same
reason), and the failure shows the block, the command, its exit code and the tail of its output.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent
COMMAND_TIMEOUT_S = 600
SERVER_START_S = 120
OUTPUT_TAIL = 4000

_FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>[\w-]+)\s*(?:[—:-]+\s*(?P<reason>.*?))?\s*-->$")
_KINDS = {"skip", "setup", "server"}


@dataclass(frozen=True)
class Block:
    index: int  # 1-based among the runnable blocks
    line: int  # line of the opening fence in README.md (1-based)
    lang: str  # bash | python
    code: str
    kind: str  # run | skip | setup | server
    reason: str

    @property
    def test_id(self) -> str:
        return f"block{self.index:02d}-L{self.line}-{self.lang}-{self.kind}"

    def commands(self) -> list[str]:
        """The bash block's commands: continuation lines joined, comment and blank lines dropped."""
        out: list[str] = []
        pending = ""
        for raw in self.code.splitlines():
            line = raw.rstrip()
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1].rstrip() + " "
                continue
            out.append((pending + line.strip()).strip())
            pending = ""
        if pending.strip():
            out.append(pending.strip())
        return out


def parse_readme(text: str) -> list[Block]:
    """The README's ```bash and ```python blocks, in order, with the readme-test marker before each."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        lang, start = fence.group(1).lower(), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j >= len(lines):
            raise ValueError(f"README.md:{start + 1}: a code fence that never closes")
        i = j + 1
        if lang not in ("bash", "python"):
            continue
        kind, reason = "run", ""
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0 and "readme-test" in lines[k]:
            marker = _MARKER.match(lines[k].strip())
            if not marker or marker.group("kind") not in _KINDS:
                raise ValueError(
                    f"README.md:{k + 1}: a readme-test marker this test does not understand: "
                    f"{lines[k].strip()!r} (expected one of {sorted(_KINDS)})"
                )
            kind, reason = marker.group("kind"), (marker.group("reason") or "").strip()
            if kind == "skip" and not reason:
                raise ValueError(f"README.md:{k + 1}: a skipped block must say why")
        blocks.append(
            Block(len(blocks) + 1, start + 1, lang, "\n".join(lines[start + 1 : j]) + "\n", kind, reason)
        )
    return blocks


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env.pop("PYTHONHOME", None)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_TAIL else "...\n" + text[-OUTPUT_TAIL:]


def _failure(block: Block, command: str, code: object, output: str) -> str:
    return (
        f"README.md block {block.index} (line {block.line}, {block.lang}) failed\n"
        f"--- block ---\n{block.code}"
        f"--- command ---\n{command}\n"
        f"--- exit code: {code} ---\n"
        f"--- output (tail) ---\n{_tail(output)}"
    )


def _run(block: Block, command: list[str] | str, shown: str, cwd: Path) -> float:
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(_failure(block, shown, f"timed out after {COMMAND_TIMEOUT_S} s", out), pytrace=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        pytest.fail(_failure(block, shown, done.returncode, done.stdout), pytrace=False)
    print(f"[{elapsed:6.1f} s] {shown}")
    return elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(block: Block, command: str, cwd: Path) -> None:
    port = _free_port()
    shown = (
        f"{shlex.join(shlex.split(command, comments=True))} --port {port}"  # the port before any # comment
    )
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {shown}"],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + SERVER_START_S
    status: object = "no answer"
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    status = response.status
                    if status == 200:
                        break
            except OSError as exc:
                status = exc
            time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    if status != 200:
        code = proc.returncode if proc.returncode is not None else "still running"
        pytest.fail(
            _failure(block, shown, f"{code}; GET {url} answered {status!r}", output or ""), pytrace=False
        )
    print(f"[server] {shown}: GET /health 200")


@pytest.fixture(scope="module")
def readme_dir(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {"cwd": tmp_path_factory.mktemp("readme"), "failed": None}


def test_readme_markers_are_understood_and_skips_say_why() -> None:
    assert BLOCKS, "README.md has no ```bash or ```python block"
    for block in BLOCKS:
        assert block.kind in _KINDS | {"run"}
        assert block.kind != "skip" or block.reason, block
        assert block.lang == "python" or block.commands(), f"block {block.index} has no command"


def test_commands_are_split_like_a_shell() -> None:
    block = Block(1, 1, "bash", "# c\na --x 1   # note\n\nb \\\n  --y 2\n", "run", "")
    assert block.commands() == ["a --x 1   # note", "b --y 2"]


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.test_id for b in BLOCKS])
def test_readme_block_runs(block: Block, readme_dir: dict) -> None:
    if block.kind == "skip":
        pytest.skip(f"README.md line {block.line}: {block.reason}")
    if readme_dir["failed"] is not None:
        pytest.skip(f"an earlier README block failed (block {readme_dir['failed']})")
    cwd: Path = readme_dir["cwd"]
    readme_dir["failed"] = block.index  # cleared below when every command passed
    if block.lang == "python":
        script = cwd / f"readme_block_{block.index:02d}.py"
        script.write_text(block.code, encoding="utf-8")
        _run(block, [str(VENV_BIN / "python"), script.name], f"python {script.name}", cwd)
    else:
        for command in block.commands():
            if block.kind == "server":
                _serve(block, command, cwd)
            else:
                _run(block, ["bash", "-o", "pipefail", "-c", command], command, cwd)
    readme_dir["failed"] = None
