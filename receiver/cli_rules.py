"""`imhook check` and `imhook explain`: see what a config resolves to and decides."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .cli_common import config_option


def validate_config(config_file: str | None, *, paths: bool = True):
    """Validate a config exactly as `imhook serve` does at start-up; return (config, chain).

    The very function the gunicorn master calls (reload.check_start_up): read the file, parse it
    with the environment (an app id is required), build every rule, check the output paths.
    `paths=False` leaves out only the last, which depends on the machine, not on the file.
    """
    from .reload import build, check_start_up, read_snapshot
    from .platforms import Platforms

    path = Path(config_file) if config_file else None
    return check_start_up(path) if paths else build(read_snapshot(path), Platforms())


def _build_lenient(config_file: str | None):
    """For explain: the same parse and build, but no app id needed (nothing is checked against it)."""
    from rules.loader import build_chain

    from .config import load_config
    from .platforms import Platforms

    config = load_config(config_file, dict(os.environ), require_app_id=False)
    platform = Platforms()
    return config, build_chain(config, platform=platform), platform


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, exists=True))
@config_option()
@click.option("--skip-paths", is_flag=True,
              help="Do not check that the files serve writes (recording, outbox) can be created here: for "
                   "a check on another machine than the server's, e.g. in CI.")
def check(file: str | None, config_file: str | None, skip_paths: bool) -> None:
    """Validate a config (FILE or --config; default $IMHOOK_CONFIG) as `imhook serve` would; print the chain.

    Exits 0 when `imhook serve` would start with it here, 2 when it would refuse it.
    """
    ctx = click.get_current_context()
    if file and config_file and ctx.get_parameter_source("config_file") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("name the config once: either FILE or --config FILE")
    path = file or config_file
    config, chain = validate_config(path, paths=not skip_paths)
    try:
        _print_check(config, chain)
    finally:
        chain.close()


def _print_check(config, chain) -> None:
    click.echo(f"{config.file}: OK")
    tokens = f"{len(config.tokens)} configured" if config.tokens else "none (Sign is not checked; set IMHOOK_TOKEN)"
    click.echo(f"  app_id: {config.app_id}   tokens: {tokens}")
    if config.netease_app_key:  # docs/netease.md; the secrets are counted, never shown
        click.echo(f"  netease: app key {config.netease_app_key}   secrets: {len(config.netease_secrets)} configured, "
                   f"CurTime window {config.netease['window_seconds']:g} s")
    recording = config.sections.get("recording")
    if recording:
        from .recording.locations import store_url
        from .recording.pgstore import mask

        url = store_url(recording) if recording["enabled"] else None  # a URL: its password masked
        click.echo(f"  recording: {(mask(url) if url else recording['path']) if recording['enabled'] else 'off'}")
    c = config.chain
    click.echo(f"  chain: deadline {c['deadline_ms']:g} ms, on_error {c['on_error']}, "
               f"rule budget {c['rule_budget_ms']:g} ms")
    if not chain.entries:
        click.echo("  (no rules: everything is allowed)")
    for i, entry in enumerate(chain.entries, 1):
        click.echo(f"  {i}. {entry.name} ({type(entry.rule).__module__}:{type(entry.rule).__name__})")
        click.echo(f"     scope: {describe_scope(entry)}")
        click.echo(f"     on_error: {entry.on_error}, budget: {entry.budget_ms:g} ms")
        described = entry.rule.describe()
        if described:
            click.echo(f"     {described}")


def describe_scope(entry) -> str:
    """The scope as the chain applies it: naming commands widens a rule to all it supports."""
    scope = {k: list(v) for k, v in vars(entry.scope).items() if v}
    text = json.dumps(scope, ensure_ascii=False) if scope else "all before-callbacks"
    own, applied = tuple(entry.rule.actions), tuple(sorted(entry.actions))
    if not applied:
        return text
    if set(applied) != set(own):
        return (f"{text} (actions {', '.join(applied)}: widened from {', '.join(own) or 'all'} "
                "because scope.commands is set)")
    return f"{text} (actions {', '.join(applied)})"


@click.command()
@config_option(alias="--rules", help="Config file with the rules (default: $IMHOOK_CONFIG, else the bundled default).")
@click.option("--command", "command_option", default=None, metavar="CALLBACK_COMMAND",
              help="The CallbackCommand to explain the body as (default: the body's own).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (reply, decision, trace).")
@click.argument("sample", type=click.Path(exists=True, dir_okay=False))
def explain(config_file: str | None, command_option: str | None, as_json: bool, sample: str) -> None:
    """Run SAMPLE (a callback body) through the rules; print the decision, reply and trace.

    Needs no app id or token: the rules are explained, not the signature.
    """
    from .core import HttpRequest, Receiver

    from .platforms import body_platform

    raw = Path(sample).read_bytes()
    body = _body(sample, raw)
    which = body_platform(body)  # a NetEase body names its eventType, a Tencent one its CallbackCommand
    command = command_option or (_body_command(sample, body) if not which else "")
    config, chain, platform = _build_lenient(config_file)
    receiver = Receiver(config, chain, platform=platform)
    # explain checks rules, not signatures: the trusted path skips app id and Sign.
    query = {"SdkAppid": config.app_id or "0", "CallbackCommand": command} if not which else {}
    try:
        outcome = receiver.handle(HttpRequest("POST", query, raw, platform=which), trusted=True)
    finally:
        chain.close()
    _print_explained(outcome.command or command, outcome, as_json)


def _body(sample: str, raw: bytes):
    try:
        body = json.loads(raw)
    except ValueError:
        raise click.UsageError(f"{sample} is not JSON; pass a callback body (a JSON object)") from None
    except RecursionError:
        raise click.UsageError(f"{sample} is nested too deeply to read; pass a callback body") from None
    if not isinstance(body, dict):
        raise click.UsageError(f"{sample} is a JSON {type(body).__name__}, not an object; pass a callback body")
    return body


def _body_command(sample: str, body: dict) -> str:
    command = body.get("CallbackCommand")
    if not command or not isinstance(command, str):
        raise click.UsageError(f"{sample}: the body has no CallbackCommand; pass --command or add it")
    return command


def _print_explained(command: str, outcome, as_json: bool) -> None:
    trace = [vars(step) for step in outcome.decision.trace] if outcome.decision else []
    verdict = outcome.decision.verdict if outcome.decision else None
    result = {
        "command": command, "status": outcome.status, "outcome": outcome.outcome_name,
        "rule": verdict.rule if verdict else "", "reason": verdict.reason if verdict else outcome.reply.get(
            "ErrorInfo", outcome.reply.get("errMsg", "")),
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
