"""`imhook emulate`: play scenario files against a receiver and print the transcripts."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

import click

from receiver.cli_common import checked_url
from receiver.errors import EXIT_CHANGED, EXIT_OK, EXIT_UNTESTED, TargetError

CONNECT_SECONDS = 2.0  # the IM's budget: a receiver it cannot connect to in that time is down to it


@click.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", required=True, callback=checked_url, help="The receiver's callback URL (http:// or https://).")
@click.option("--app-id", default=None, help="SdkAppid to send (default: $IMHOOK_APP_ID).")
@click.option("--token", default=None, help="Sign with this token (default: first of $IMHOOK_TOKEN; none: unsigned).")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds the IM waits for a reply [default: the scenario's, else 2].")
@click.option("--bodies", is_flag=True, help="Show every callback body and reply in the transcript.")
@click.option("--quiet", "-q", is_flag=True, help="Print only each scenario's result line.")
@click.option("--allow-unreachable", is_flag=True,
              help="Pass even when the receiver cannot be reached or turns every callback away: the "
                   "IM's fail-open default is what is being tested.")
def emulate(scenarios: tuple[str, ...], url: str, app_id: str | None, token: str | None, budget: float | None,
            bodies: bool, quiet: bool, allow_unreachable: bool) -> None:
    """Play SCENARIOS (YAML) as the Tencent IM backend against URL.

    A scenario with `platform: netease` plays the NetEase IM instead: it posts to URL's server at
    /netease/callback, signed with $IMHOOK_NETEASE_APP_KEY and $IMHOOK_NETEASE_APP_SECRET.
    Exits 0 when every expectation holds, 1 when one fails or a step cannot happen, 2 when a
    scenario file or an option is wrong, 3 when the receiver cannot be reached or answered no
    callback (unless --allow-unreachable). Reads no imhook config: the IM knows only the URL, the
    app id and the token.
    """
    from .im import APP_KEY_ENV, APP_SECRET_ENV, Emulator
    from .platforms import NETEASE
    from .scenario import load_scenario

    loaded = [load_scenario(path) for path in scenarios]  # every file is checked before anything is sent
    app_id = app_id or os.environ.get("IMHOOK_APP_ID")
    if any(scenario.platform != NETEASE for scenario in loaded):
        _check_app_id(app_id)
    if any(scenario.platform == NETEASE for scenario in loaded):
        missing = [name for name in (APP_KEY_ENV, APP_SECRET_ENV) if not os.environ.get(name)]
        if missing:
            raise click.UsageError(f"a NetEase scenario needs {' and '.join(missing)} (the AppKey and "
                                   "AppSecret it signs with)")
    if not allow_unreachable:
        _check_reachable(url)
    emulator = Emulator(url, app_id, token, budget_seconds=budget)
    reports = []
    for scenario in loaded:
        report = emulator.run(scenario)
        reports.append(report)
        click.echo(f"{scenario.file}: {report.summary()}" if quiet else report.transcript(bodies=bodies))
        if not quiet and len(loaded) > 1:
            click.echo()
    problem = None if allow_unreachable else unanswered(reports)
    if problem:
        raise TargetError(f"{problem}; fix the receiver, --url, --token or --app-id, or pass "
                          "--allow-unreachable to test the IM's fail-open default on purpose")
    sys.exit(EXIT_OK if all(report.ok for report in reports) else EXIT_CHANGED)


def _check_app_id(app_id: str | None) -> None:
    from receiver.config import is_app_id

    if not app_id:
        raise click.UsageError("no app id: pass --app-id or set IMHOOK_APP_ID")
    if not is_app_id(app_id):
        raise click.UsageError(f"--app-id / $IMHOOK_APP_ID {app_id!r} is not an SdkAppid (a whole number)")


def _check_reachable(url: str) -> None:
    """Connect once before playing: a receiver that is not there fails fast, with one line."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise TargetError(f"cannot reach {parts.scheme}://{parts.netloc}: {why}; start the receiver or fix "
                          "--url (or pass --allow-unreachable to test the IM's fail-open default)") from None


def unanswered(reports) -> str | None:
    """Why the receiver tested nothing (None: it answered at least one callback as the IM wants)."""
    exchanges = [x for report in reports for step in report.steps for x in step.exchanges]
    if not exchanges or any(x.answered for x in exchanges):
        return None
    statuses = [x.status for x in exchanges if x.status is not None]
    if not statuses:
        return f"the receiver answered none of {len(exchanges)} callbacks"
    first = statuses[0]
    hint = {401: " (a wrong or missing --token / IMHOOK_TOKEN)", 403: " (the wrong --app-id)",
            200: " with no JSON object, or too late"}
    if exchanges[0].command.startswith("NetEase."):
        hint.update({401: " (a wrong IMHOOK_NETEASE_APP_KEY or IMHOOK_NETEASE_APP_SECRET)",
                     403: " (a wrong IMHOOK_NETEASE_APP_KEY)", 404: " (the receiver has no /netease/callback)"})
    return f"the receiver answered no callback as the IM needs: HTTP {first}{hint.get(first, '')}"


def register(group: click.Group) -> None:
    group.add_command(emulate)
