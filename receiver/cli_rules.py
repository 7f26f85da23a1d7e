"""`imhook check` and `imhook explain`: see what a rules file resolves to and decides."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click


def _build(rules_file: str | None, app_id: str | None):
    from rules.loader import build_chain

    from .config import load_config
    from .tencent.platform import TencentPlatform

    env = dict(os.environ)
    if app_id:
        env["IMHOOK_APP_ID"] = app_id
    # Checking rules needs no app id: a file meant for $IMHOOK_APP_ID is still checkable.
    config = load_config(rules_file, env, require_app_id=False)
    platform = TencentPlatform()
    return config, build_chain(config, platform=platform), platform


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def check(file: str) -> None:
    """Validate a config FILE and print the resolved rule chain."""
    config, chain, _ = _build(file, None)
    click.echo(f"{file}: OK")
    click.echo(f"  app_id: {config.app_id or '(from $IMHOOK_APP_ID)'}   tokens: {len(config.tokens)} configured")
    c = config.chain
    click.echo(f"  chain: deadline {c['deadline_ms']:g} ms, on_error {c['on_error']}, "
               f"rule budget {c['rule_budget_ms']:g} ms")
    if not chain.entries:
        click.echo("  (no rules: everything is allowed)")
    for i, entry in enumerate(chain.entries, 1):
        scope = {k: list(v) for k, v in vars(entry.scope).items() if v}
        click.echo(f"  {i}. {entry.name} ({type(entry.rule).__module__}:{type(entry.rule).__name__})")
        click.echo(f"     scope: {json.dumps(scope) if scope else 'all before-callbacks'}"
                   + (f" (actions {', '.join(entry.rule.actions)})" if entry.rule.actions else ""))
        click.echo(f"     on_error: {entry.on_error}, budget: {entry.budget_ms:g} ms")
        described = entry.rule.describe()
        if described:
            click.echo(f"     {described}")
    chain.close()


@click.command()
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Config file with the rules (default: $IMHOOK_CONFIG, else the bundled default).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (reply, decision, trace).")
@click.argument("sample", type=click.Path(exists=True, dir_okay=False))
def explain(rules_file: str | None, as_json: bool, sample: str) -> None:
    """Run SAMPLE (a callback body) through the rules; print the decision, reply and trace."""
    from .core import HttpRequest, Receiver

    raw = Path(sample).read_bytes()
    try:
        command = json.loads(raw).get("CallbackCommand", "")
    except (ValueError, AttributeError):
        raise click.UsageError(f"{sample} is not a JSON object") from None
    config, chain, platform = _build(rules_file, None)
    receiver = Receiver(config, chain, platform=platform)
    # explain checks rules, not signatures: the trusted path skips app id and Sign.
    query = {"SdkAppid": config.app_id or "0", "CallbackCommand": command}
    outcome = receiver.handle(HttpRequest("POST", query, raw), trusted=True)
    chain.close()
    trace = [vars(step) for step in outcome.decision.trace] if outcome.decision else []
    verdict = outcome.decision.verdict if outcome.decision else None
    result = {
        "command": command, "status": outcome.status, "outcome": outcome.outcome_name,
        "rule": verdict.rule if verdict else "", "reason": verdict.reason if verdict else outcome.reply.get(
            "ErrorInfo", ""),
        "reply": outcome.reply, "trace": trace,
    }
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    click.echo(f"{command}: {result['outcome'].upper()}" + (f" by {result['rule']}" if result["rule"] else ""))
    click.echo(f"  reason: {result['reason'] or '-'}")
    click.echo("  trace:" if trace else "  trace: (no rule applied)")
    for step in trace:
        click.echo(f"    {step['rule']:<24} {step['result']:<11} {step['elapsed_ms']:7.2f} ms  {step['reason']}")
    click.echo("  reply:")
    click.echo("    " + json.dumps(outcome.reply, ensure_ascii=False, indent=2).replace("\n", "\n    "))


def register(group: click.Group) -> None:
    group.add_command(check)
    group.add_command(explain)
