"""Rules are found through the entry-point group (built-in and third-party alike) or module:Class."""

from __future__ import annotations

import re
import subprocess
import sys

from rules.registry import registered

from .helpers import ROOT, sample

EXAMPLE = ROOT / "examples" / "third_party_rule"


def test_every_registered_rule_is_documented_in_the_readme():
    # README.md or a page of docs/ (the docs site): each rule has one `### \`name\`` section.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    docs = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    documented = set(re.findall(r"^### `(\w+)`", docs, flags=re.M))
    missing = sorted(set(registered()) - documented)
    assert not missing, f"registered rules without a '### `name`' section in README.md or docs/: {missing}"
    for name in registered():
        section = docs.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        assert f"use: {name}" in section, f"README section for {name} has no YAML example"


def test_every_registered_rule_loads():
    from rules.base import Rule
    from rules.registry import load_rule_class

    for name in registered():
        assert issubclass(load_rule_class(name), Rule)


def _fake_install(tmp_path):
    """Register the example rule the way pip would: a dist-info with entry_points.txt on sys.path."""
    dist = tmp_path / "imhook_vip_rule-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: imhook-vip-rule\nVersion: 0.1.0\n")
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    lines = [f"{name} = {target}" for name, target in project["entry-points"]["imhook.rules"].items()]
    (dist / "entry_points.txt").write_text("[imhook.rules]\n" + "\n".join(lines) + "\n")
    return f"{tmp_path}:{EXAMPLE}"


def test_a_third_party_rule_registers_through_the_entry_point_group(tmp_path):
    config = tmp_path / "rules.yaml"
    config.write_text("app_id: 1\nrules:\n  - use: vip_only\n    config: {vips: [leckie]}\n")
    group = sample("Group.CallbackBeforeCreateGroup")
    group["Operator_Account"] = "mallory"
    body = tmp_path / "create.json"
    import json

    body.write_text(json.dumps(group))
    env = {"PYTHONPATH": _fake_install(tmp_path), "PATH": "/usr/bin:/bin"}
    check = subprocess.run([sys.executable, "-m", "receiver.cli", "check", str(config)],
                           capture_output=True, text=True, env=env, cwd=ROOT)
    assert check.returncode == 0, check.stderr
    assert "vip_only (imhook_vip_rule:VipOnly)" in check.stdout
    explain = subprocess.run([sys.executable, "-m", "receiver.cli", "explain", "--json", "--rules", str(config),
                              str(body)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert explain.returncode == 0, explain.stderr
    assert json.loads(explain.stdout)["reply"] == {"ActionStatus": "OK", "ErrorCode": 10150,
                                                    "ErrorInfo": "only VIP members can create groups"}


def test_a_rule_named_by_module_and_class(tmp_path):
    from .helpers import handle, make_receiver, rules_yaml

    sys.path.insert(0, str(EXAMPLE))
    try:
        receiver = make_receiver(rules_yaml("{use: 'imhook_vip_rule:VipOnly', config: {vips: [leckie]}}"))
    finally:
        sys.path.remove(str(EXAMPLE))
    assert handle(receiver, sample("Group.CallbackBeforeCreateGroup")).reply["ErrorCode"] == 0
