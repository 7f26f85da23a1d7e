"""The README is a front door, the docs site builds strictly, and the deploy files agree.

The shell blocks themselves are run by tests/test_docs_blocks.py.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_docs_blocks import DOC_PAGES, ROOT, blocks

README = ROOT / "README.md"
README_MAX_LINES = 200
README_SECTIONS = ["Quickstart", "A first decision", "Deploy behind the Tencent IM console", "Commands",
                   "Documentation"]
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def sh_blocks_of(section: str) -> list[str]:
    text = readme().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S)


# --- the docs site ---------------------------------------------------------------------------------

def _mkdocs_or_skip() -> None:
    if importlib.util.find_spec("mkdocs") is None:
        message = "mkdocs is not installed: pip install -e '.[test]'"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the docs build: {message}")
        pytest.skip(message)


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _mkdocs_or_skip()
    site = tmp_path_factory.mktemp("site")
    done = build_site(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr}"
    return site


def test_docs_site_builds_strictly(site):
    for page in ["index", "deploy", "rules", "configuration", "recording", "operations", "protocol"]:
        assert (site / (page if page != "index" else "") / "index.html").is_file(), page


@pytest.mark.parametrize("broken, complaint", [
    ("[gone](no-such-page.md)", "no-such-page.md"),
    ("[gone](rules.md#no-such-section)", "no-such-section"),
])
def test_strict_build_fails_on_a_broken_link_or_anchor(tmp_path, broken, complaint):
    _mkdocs_or_skip()
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    with open(tmp_path / "docs" / "deploy.md", "a", encoding="utf-8") as page:
        page.write(f"\nSee {broken}.\n")
    done = build_site(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert complaint in done.stderr


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f": {page.name}" in nav, f"docs/{page.name} is missing from mkdocs.yml's nav"


# --- the README ----------------------------------------------------------------------------------

def test_readme_is_a_front_door():
    lines = readme().split("\n")
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    assert headings == README_SECTIONS
    intro = readme().split("\n## ", 1)[0]
    assert "![" in intro and "(docs/flow.svg)" in intro, "the picture of the flow comes before the Quickstart"


def test_quickstart_is_two_commands_and_ci_runs_the_second():
    commands = [line for block in sh_blocks_of("Quickstart") for line in block.strip().split("\n")]
    assert len(commands) == 2, commands
    serve, test = commands
    assert "pip install ." in serve and "imhook serve" in serve
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").split("\n")
    assert test in ci, f".ci/run must run the README's test command verbatim: {test}"


def test_readme_links_resolve(site):
    for target in MARKDOWN_LINK.findall(readme()):
        if re.match(r"https?://", target):
            continue
        path, _, anchor = target.partition("#")
        assert (ROOT / path).exists(), f"README links to {path}, which does not exist"
        if anchor:
            assert path.startswith("docs/") and path.endswith(".md"), target
            html = (site / Path(path).relative_to("docs").with_suffix("") / "index.html").read_text(encoding="utf-8")
            assert f'id="{anchor}"' in html, f"README links to {target}: no such section"


def _command_paths() -> list[str]:
    import click

    from receiver.cli import main

    def walk(group: click.Group, prefix: str):
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                if command.invoke_without_command:  # a group that is a command too (`imhook console`)
                    yield f"{prefix} {name}"
                yield from walk(command, f"{prefix} {name}")
            else:
                yield f"{prefix} {name}"

    return list(walk(main, "imhook"))


def test_command_table_lists_every_command():
    table = readme().split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(imhook(?: [a-z][a-z-]*)+)", table, re.M)
    assert sorted(set(listed)) == sorted(_command_paths())


# --- what the docs point at ------------------------------------------------------------------------

REPO_PATH = re.compile(r"`((?:receiver|rules|tests|examples|benchmarks|deploy|docs|\.ci)/[\w./-]*?)(?::\w+)?`")


def test_no_reference_to_files_outside_the_repository():
    for page in DOC_PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"PROTOCOL(\.md)? ?§", text), f"{page.name} cites PROTOCOL, which is not in the repo"
        assert "/work/" not in text, f"{page.name} names a path of the development machine"


def test_repository_paths_in_the_docs_exist():
    missing = []
    for page in DOC_PAGES:
        for path in REPO_PATH.findall(page.read_text(encoding="utf-8")):
            if "*" not in path and "<" not in path and not (ROOT / path.rstrip(".")).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert not missing


# --- the deploy files agree with each other --------------------------------------------------------

def procfile_command() -> list[str]:
    line = (ROOT / "Procfile").read_text(encoding="utf-8").strip()
    assert line.startswith("web: ")
    return shlex.split(line[len("web: "):])


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "deploy" / "imhook.service", encoding="utf-8")
    return parser


def test_systemd_docker_and_procfile_run_the_same_command():
    exec_start = shlex.split(unit()["Service"]["ExecStart"])
    assert Path(exec_start[0]).name == procfile_command()[0]
    assert exec_start[1:] == procfile_command()[1:]
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert cmd and json.loads(cmd[1]) == procfile_command()


def test_proxy_points_at_the_units_address_and_limits_bodies_like_imhook():
    from receiver.config import ServerSection

    nginx = (ROOT / "deploy" / "nginx-imhook.conf").read_text(encoding="utf-8")
    bind = re.search(r"IMHOOK_BIND=(\S+)", (ROOT / "deploy" / "imhook.service").read_text(encoding="utf-8"))[1]
    assert re.search(rf"^\s*server {re.escape(bind)};", nginx, re.M)
    limit = re.search(r"client_max_body_size (\d+)m;", nginx)
    assert int(limit[1]) << 20 == ServerSection().load({})["max_body_bytes"]


def test_deploy_config_keeps_recordings_on_an_absolute_path():
    from receiver.config import load_config

    config = load_config(ROOT / "deploy" / "imhook.yaml", {"IMHOOK_APP_ID": "1400000000"})
    path = Path(config.recording["path"])
    assert path.is_absolute()
    assert str(path).startswith(unit()["Service"]["WorkingDirectory"])
    assert "/var/lib/" + unit()["Service"]["StateDirectory"] == unit()["Service"]["WorkingDirectory"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"VOLUME {path.parent}" in dockerfile


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path):
    # verify checks that ExecStart is executable: point it at this venv's gunicorn.
    text = (ROOT / "deploy" / "imhook.service").read_text(encoding="utf-8")
    local = text.replace("/opt/imhook/.venv/bin/gunicorn", str(Path(sys.executable).parent / "gunicorn"))
    (tmp_path / "imhook.service").write_text(local, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "imhook.service")],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if "imhook.service" in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_docs_show_the_deploy_files_they_describe():
    shown = {b.marker[1] for page in DOC_PAGES for b in blocks(page) if b.marker and b.marker[0] == "file"}
    assert {"deploy/imhook.service", "deploy/nginx-imhook.conf"} <= shown


# --- the configuration examples --------------------------------------------------------------------

CONFIG_KEYS = {"app_id", "platform", "rules", "auth", "server", "chain", "reload", "recording", "metrics",
               "logging", "forwarding"}
# What the examples' secrets and services are read from; none is contacted while building the chain.
EXAMPLE_ENV = {"IMHOOK_APP_ID": "1400000000", "IMHOOK_REDIS_URL": "redis://127.0.0.1:6379/15",
               "IMHOOK_RECORDING_SALT": "example-salt", "FORWARD_SECRET": "example-secret"}


def config_examples() -> list:
    """YAML blocks that are imhook configs: a mapping of config sections, or a list of rule entries.

    Scenario files, CI workflows and blocks with a `...` placeholder are not configs.
    """
    import yaml

    found = []
    for page in DOC_PAGES:
        for block in blocks(page):
            if block.lang != "yaml" or "..." in block.text:
                continue
            data = yaml.safe_load(block.text)
            if isinstance(data, dict) and set(data) <= CONFIG_KEYS:
                found.append(pytest.param(block.text, id=block.id))
            elif isinstance(data, list) and all(isinstance(item, dict) and "use" in item for item in data):
                found.append(pytest.param("rules:\n" + "".join(f"  {line}\n" for line in block.text.splitlines()),
                                          id=block.id))
    return found


CONFIG_EXAMPLES = config_examples()


def test_the_docs_have_config_examples():
    assert len(CONFIG_EXAMPLES) >= 15


@pytest.mark.parametrize("text", CONFIG_EXAMPLES)
def test_config_example_is_valid(text, monkeypatch):
    """Every config example loads and builds its rules, word lists read from examples/."""
    from receiver.config import parse_config
    from receiver.platforms import Platforms
    from rules.loader import build_chain

    for name, value in EXAMPLE_ENV.items():  # rules read their services' URLs from the environment
        monkeypatch.setenv(name, value)
    config = parse_config(text, "example.yaml", EXAMPLE_ENV, base_dir=ROOT / "examples")
    build_chain(config, platform=Platforms()).close()  # as the server builds it: both IMs' commands
