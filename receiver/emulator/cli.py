"""`imhook emulate`: play scenario files against a receiver and print the transcripts."""

from __future__ import annotations

import os
import sys

import click


@click.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", required=True, help="The receiver's callback URL.")
@click.option("--app-id", default=None, help="SdkAppid to send (default: $IMHOOK_APP_ID).")
@click.option("--token", default=None, help="Sign with this token (default: first of $IMHOOK_TOKEN; none: unsigned).")
@click.option("--budget", type=float, default=None,
              help="Seconds the IM waits for a reply (default: the scenario's, else 2).")
@click.option("--bodies", is_flag=True, help="Show every callback body and reply in the transcript.")
@click.option("--quiet", "-q", is_flag=True, help="Print only each scenario's result line.")
def emulate(scenarios: tuple[str, ...], url: str, app_id: str | None, token: str | None, budget: float | None,
            bodies: bool, quiet: bool) -> None:
    """Play SCENARIOS (YAML) as the Tencent IM backend against URL.

    Exits 0 when every expectation holds, 1 when one fails or a step cannot happen, 2 when a
    scenario file is wrong.
    """
    from .im import Emulator
    from .scenario import load_scenario

    app_id = app_id or os.environ.get("IMHOOK_APP_ID")
    if not app_id:
        raise click.UsageError("no app id: pass --app-id or set IMHOOK_APP_ID")
    loaded = [load_scenario(path) for path in scenarios]  # every file is checked before anything is sent
    emulator = Emulator(url, app_id, token, budget_seconds=budget)
    passed = True
    for scenario in loaded:
        report = emulator.run(scenario)
        passed &= report.ok
        click.echo(f"{scenario.file}: {report.summary()}" if quiet else report.transcript(bodies=bodies))
        if not quiet and len(loaded) > 1:
            click.echo()
    sys.exit(0 if passed else 1)


def register(group: click.Group) -> None:
    group.add_command(emulate)
