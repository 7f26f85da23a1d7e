"""Every shell block of the README and docs/ runs as documented, so the docs cannot drift.

The extractor finds the fenced code blocks of the README and docs/ and runs the shell ones as a
reader would.

A block is what a reader pastes: ```bash, ```sh and ```shell blocks are scripts; ```console blocks
hold `$ ` commands followed by the output they print, which is compared (timings such as `16.1 ms`
are compared as "some milliseconds", a line `...` stands for any lines). A comment on the line
before a block changes how it is treated:

    <!-- skip: REASON -->      never run (only for what needs the IM console, root or the like)
    <!-- needs: docker -->     run only when a Docker engine answers, else skipped with that reason
    <!-- file: PATH -->        not run: the block must equal the repository file PATH

The blocks of one page run in order in one scratch copy of the repository, like a reader working
down the page. A command that starts the receiver (`imhook serve`, `gunicorn`) runs in the
background until the page is done, on a free loopback port that replaces the docs' 8080.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
MARKER = re.compile(r"<!--\s*(skip|needs|file):\s*(.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
# The port the docs use, wherever a reader's command or URL names it.
DOC_PORT = re.compile(r"(?<=127\.0\.0\.1:)8080\b|(?<=localhost:)8080\b|(?<=\bPORT=)8080\b")
SERVER_COMMAND = re.compile(r"\bimhook serve\b|(?:^|[\s/])gunicorn\s")
TIMING = re.compile(r" *\b\d+(?:\.\d+)? ?ms\b")
COMMAND_TIMEOUT = 200        # seconds; a fresh `pip install .` takes ~25 s here
SERVER_READY_TIMEOUT = 120   # the Quickstart installs before it serves
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.sqlite*", "*.egg-info",
                                     ".pytest_cache", "site", "build", "dist", "*.journal")


@dataclass
class Block:
    page: Path
    line: int        # 1-based line of the opening fence
    lang: str
    text: str
    marker: tuple[str, str] | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page, with the marker comment just before it."""
    found, lines, i = [], page.read_text(encoding="utf-8").split("\n"), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start, body = len(opening["indent"]), i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.fullmatch(before)
        found.append(Block(page, start + 1, opening["lang"], "\n".join(body) + "\n",
                           (marker[1], marker[2]) if marker else None))
        i += 1
    return found


def shell_blocks() -> list[Block]:
    return [b for page in DOC_PAGES for b in blocks(page) if b.lang in SHELL_LANGS]


def logical_lines(text: str) -> list[str]:
    """Lines with their backslash continuations joined; blank lines and comments dropped."""
    result, current = [], ""
    for line in text.split("\n"):
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.lstrip().startswith("#"):
            result.append(current.strip())
        current = ""
    return result


@dataclass
class Step:
    command: str
    expected: list[str] | None = None   # console output lines, when the block shows them

    @property
    def starts_server(self) -> bool:
        return starts_server(self.command)


def starts_server(command: str) -> bool:
    return bool(SERVER_COMMAND.search(command)) and not re.search(r"\s(--help|-h)\b", command)


def steps(block: Block) -> list[Step]:
    if block.lang != "console":
        result, script = [], []
        for line in logical_lines(block.text):
            if starts_server(line):
                if script:
                    result.append(Step("\n".join(script)))
                    script = []
                result.append(Step(line))
            else:
                script.append(line)
        return result + ([Step("\n".join(script))] if script else [])
    result, lines, i = [], block.text.rstrip("\n").split("\n"), 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(f"{block.id}: console output before any `$ ` command: {lines[i]!r}")
        command = lines[i][2:]
        while command.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        result.append(Step(command, output or None))
    return result


def normalise(line: str) -> str:
    return TIMING.sub(" <ms>", line.rstrip())


def output_matches(expected: list[str], actual: str) -> bool:
    """`expected` as shown in the docs against what the command printed: `...` is any lines."""
    pattern = "".join(r"(?:[^\n]*\n)*?" if line.strip() == "..." else re.escape(normalise(line)) + r"\n"
                      for line in expected)
    text = "".join(normalise(line) + "\n" for line in actual.rstrip("\n").split("\n"))
    return re.fullmatch(pattern, text) is not None


def docker_engine() -> str | None:
    """None when a Docker engine answers, else why not."""
    if not shutil.which("docker"):
        return "no docker command"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return "no Docker engine: " + (probe.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PageSession:
    """A reader working down one page: a scratch copy of the repository, one port, one server."""

    workdir: Path
    port: int = field(default_factory=free_port)
    server: subprocess.Popen | None = None
    server_log: Path | None = None
    containers: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, scratch: Path) -> PageSession:
        shutil.copytree(ROOT, scratch, ignore=COPY_IGNORE, symlinks=True)
        return cls(scratch)

    def env(self) -> dict[str, str]:
        # A reader's shell: none of the test run's imhook settings, the project's venv on PATH,
        # and a loopback address for anything started through the Procfile's gunicorn.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("IMHOOK_") and k not in ("PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["IMHOOK_BIND"] = f"127.0.0.1:{self.port}"
        return env

    def localise(self, text: str) -> str:
        return DOC_PORT.sub(str(self.port), text)

    def run(self, block: Block) -> None:
        for step in steps(block):
            command = self.localise(step.command)
            self.containers.update(re.findall(r"docker run\b.*?--name[ =](\S+)", command))
            self.volumes.update(v for v in re.findall(r"\s-v\s+([^:/\s]+):", command))
            if step.starts_server:
                self.start_server(command)
                continue
            # stdout and stderr together, as a terminal shows them (`imhook send` puts its status
            # line on one and the reply on the other).
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=self.workdir, env=self.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=COMMAND_TIMEOUT)
            where = f"{block.id}: `{step.command}`"
            assert done.returncode == 0, (
                f"{where} exited {done.returncode}\n--- output\n{done.stdout}" + self.server_tail())
            if step.expected is not None:
                expected = [self.localise(line) for line in step.expected]
                assert output_matches(expected, done.stdout), (
                    f"{where} printed something else than the docs show\n--- docs\n"
                    + "\n".join(expected) + f"\n--- printed\n{done.stdout}")

    def start_server(self, command: str) -> None:
        self.stop_server()
        command = command.rstrip().removesuffix("&").rstrip()
        self.server_log = self.workdir / f"server-{self.port}.log"
        with open(self.server_log, "ab") as log:
            self.server = subprocess.Popen(["bash", "-c", command], cwd=self.workdir, env=self.env(),
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise AssertionError(f"`{command}` exited with {self.server.returncode}" + self.server_tail())
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"`{command}` did not answer /healthz in {SERVER_READY_TIMEOUT} s" + self.server_tail())

    def server_tail(self) -> str:
        if not self.server_log or not self.server_log.exists():
            return ""
        return "\n--- server log (end)\n" + self.server_log.read_text(errors="replace")[-3000:]

    def stop_server(self) -> None:
        if self.server is None:
            return
        if self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()
        self.server = None

    def close(self) -> None:
        self.stop_server()
        for name in self.containers:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        for name in self.volumes:
            subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, timeout=60)


# --- the blocks of the README and docs/ -----------------------------------------------------------

import pytest  # noqa: E402

SHELL_BLOCKS = shell_blocks()
FILE_BLOCKS = [b for page in DOC_PAGES for b in blocks(page) if b.marker and b.marker[0] == "file"]


@pytest.fixture(scope="module")
def page_session(tmp_path_factory):
    """The session of the page being read; the previous page's is closed when the next begins."""
    current: dict[Path, PageSession] = {}

    def session_for(page: Path) -> PageSession:
        if page not in current:
            for other in current.values():
                other.close()
            current.clear()
            current[page] = PageSession.create(tmp_path_factory.mktemp(page.stem) / "repo")
        return current[page]

    yield session_for
    for session in current.values():
        session.close()


@pytest.mark.integration
@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.id)
def test_shell_block_runs_as_documented(block, page_session):
    if block.marker and block.marker[0] == "skip":
        pytest.skip(block.marker[1])
    if block.marker and block.marker[0] == "needs":
        assert block.marker[1] == "docker", f"{block.id}: unknown need {block.marker[1]!r}"
        reason = docker_engine()
        if reason:
            pytest.skip(f"needs a Docker engine ({reason})")
    page_session(block.page).run(block)


@pytest.mark.parametrize("block", FILE_BLOCKS, ids=lambda b: b.id)
def test_block_shows_the_file_it_names(block):
    path = ROOT / block.marker[1]
    assert path.is_file(), f"{block.id} names {block.marker[1]}, which does not exist"
    assert block.text == path.read_text(encoding="utf-8"), f"{block.id} differs from {block.marker[1]}"


def test_every_skip_says_why_and_needs_only_the_outside_world():
    for block in SHELL_BLOCKS:
        if block.marker and block.marker[0] == "skip":
            assert len(block.marker[1]) > 10, f"{block.id}: a skip needs its reason"
    skipped = [b.id for b in SHELL_BLOCKS if b.marker and b.marker[0] == "skip"]
    # Each skip is a promise that the block cannot run here; keep the list short and known: the
    # test-suite line, the systemd install, and two that need the user's own PostgreSQL server.
    assert len(skipped) <= 4, skipped


def test_there_are_blocks_to_run():
    runnable = [b for b in SHELL_BLOCKS if not b.marker]
    assert len(runnable) >= 8
    assert any(b.page.name == "README.md" for b in runnable)


# --- the extractor itself --------------------------------------------------------------------------

def _block(text: str, lang: str = "sh") -> Block:
    return Block(ROOT / "README.md", 1, lang, text)


STEP_CASES = [
    ("echo a\necho b\n", "sh", [("echo a\necho b", False, None)]),
    ("# a comment\n\necho a \\\n  b\n", "bash", [("echo a    b", False, None)]),
    ("x=1 imhook serve --bind 127.0.0.1:8080 &\nimhook send f --url u\n", "sh",
     [("x=1 imhook serve --bind 127.0.0.1:8080 &", True, None), ("imhook send f --url u", False, None)]),
    ("imhook serve --help\n", "sh", [("imhook serve --help", False, None)]),
    ("PORT=8080 gunicorn --config python:receiver.gunicorn_conf &\n", "bash",
     [("PORT=8080 gunicorn --config python:receiver.gunicorn_conf &", True, None)]),
    ("$ imhook sign --token t \\\n    --time 1\nRequestTime=1\nSign=x\n$ true\n", "console",
     [("imhook sign --token t  --time 1", False, ["RequestTime=1", "Sign=x"]), ("true", False, None)]),
]


@pytest.mark.parametrize("text, lang, expected", STEP_CASES)
def test_steps_split_blocks_into_commands(text, lang, expected):
    got = [(s.command, s.starts_server, s.expected) for s in steps(_block(text, lang))]
    assert got == expected


def test_console_output_without_a_command_is_an_error():
    with pytest.raises(ValueError, match="before any"):
        steps(_block("output\n$ true\n", "console"))


MATCH_CASES = [
    (["HTTP 200 in 16.1 ms", "{}"], "HTTP 200 in 3 ms\n{}\n", True),
    (["HTTP 200 in 16.1 ms", "{}"], "HTTP 500 in 3 ms\n{}\n", False),
    (["    rule      refuse_some    0.04 ms  why"], "    rule      refuse_some   12.50 ms  why\n", True),
    (["a", "...", "z"], "a\nb\nc\nz\n", True),
    (["a", "...", "z"], "a\nz\n", True),
    (["a", "...", "z"], "a\nb\n", False),
    (["a"], "a\nextra\n", False),
    (["a", "b"], "a\n", False),
]


@pytest.mark.parametrize("expected, printed, matches", MATCH_CASES)
def test_output_comparison(expected, printed, matches):
    assert output_matches(expected, printed) is matches


def test_markers_and_indented_fences_are_read(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- skip: needs the IM console -->\n```bash\nfalse\n```\n\n"
                    "1. step\n\n    ```sh\n    echo indented\n    ```\n", encoding="utf-8")
    found = blocks(page)
    assert [(b.lang, b.text, b.marker) for b in found] == [
        ("bash", "false\n", ("skip", "needs the IM console")), ("sh", "echo indented\n", None)]


def test_the_docs_port_becomes_the_sessions_port(tmp_path):
    session = PageSession(tmp_path, port=12345)
    assert session.localise("--bind 127.0.0.1:8080 --url http://localhost:8080/x PORT=8080 -p 127.0.0.1:8080:8080") \
        == "--bind 127.0.0.1:12345 --url http://localhost:12345/x PORT=12345 -p 127.0.0.1:12345:8080"
