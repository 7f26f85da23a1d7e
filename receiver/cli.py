"""The `imhook` command line: serve, sign, send, check, explain (and more, registered below).

Every command names its config with `--config FILE` (default $IMHOOK_CONFIG) and ends a user
error in one line `imhook: <problem>; <fix>` with the exit codes of receiver/errors.py, documented
in docs/cli.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from .cli_common import checked_url, config_option
from .errors import EXIT_UNTESTED, EXIT_USAGE, ImhookError, TargetError

DEFAULT_BIND = "127.0.0.1:8080"  # on a laptop: loopback only; a platform that sets PORT gets 0.0.0.0
SEND_TIMEOUT = 2.0  # the IM's own budget (PROTOCOL.md §2)


class ImhookGroup(click.Group):
    """Turn imhook's own errors into one clear line and their exit status, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ImhookError as exc:
            fail(str(exc), exc.exit_code)
        except BrokenPipeError:  # `imhook ... | head`: the reader has all it wanted
            try:  # Python would complain again while flushing stdout at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            sys.exit(0)
        except OSError as exc:  # a file that vanished or cannot be written mid-command
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", EXIT_USAGE)


def fail(message: str, code: int) -> None:
    """Print `imhook: message` on stderr and exit with `code`."""
    from .client import hide_signature

    click.echo(f"imhook: {hide_signature(message)}", err=True)
    sys.exit(code)


@click.group(cls=ImhookGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imhook")
def main() -> None:
    """imhook: a receiver for Tencent Cloud IM third-party callbacks, with a YAML rule chain.

    Exit codes: 0 ok; 1 decisions changed or expectations failed; 2 usage or config error; 3 nothing
    was tested or the target failed (unreachable, every reply 401/5xx, records errored, 0 selected).
    """
    # A lone surrogate (from a callback body, a reply or a file name) is printed as its \\uXXXX
    # escape, which is also what JSON calls it, instead of ending the command in UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def serve_bind(flag: str | None, env: dict[str, str]) -> str:
    """--bind, else $IMHOOK_BIND, else 0.0.0.0:$PORT when a platform sets PORT, else loopback:8080."""
    if flag:
        return flag
    if env.get("IMHOOK_BIND"):
        return env["IMHOOK_BIND"]
    if env.get("PORT"):
        return f"0.0.0.0:{env['PORT']}"
    return DEFAULT_BIND


def _bind_problem(bind: str) -> str | None:
    if bind.startswith(("unix:", "fd://")):
        return None
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        return f"{bind!r} is not HOST:PORT (e.g. 127.0.0.1:8080) with a port from 0 to 65535"
    return None


@main.command()
@click.option("--bind", default=None, metavar="HOST:PORT",
              help=f"Where to listen [default: $IMHOOK_BIND, else 0.0.0.0:$PORT if PORT is set, else {DEFAULT_BIND}].")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="gunicorn worker processes [default: $IMHOOK_WORKERS, else the number of cores, at least 2].")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Threads per worker [default: $IMHOOK_THREADS, else 2].")
@config_option()
def serve(bind: str | None, workers: int | None, threads: int | None, config_file: str | None) -> None:
    """Start the receiver under gunicorn with imhook's gunicorn settings."""
    bind = serve_bind(bind, dict(os.environ))
    problem = _bind_problem(bind)
    if problem:
        raise click.UsageError(f"--bind / $IMHOOK_BIND / $PORT: {problem}")
    if config_file:
        os.environ["IMHOOK_CONFIG"] = str(Path(config_file).resolve())
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:receiver.gunicorn_conf", "--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    os.execv(sys.executable, argv)


PLATFORM_OPTION = click.option("--platform", type=click.Choice(("tencent", "netease")), default="tencent",
                               show_default=True, help="The IM: Tencent (query Sign) or NetEase (header CheckSum).")


@main.command("sign")
@click.option("--token", required=True, help="The callback token from the IM console (NetEase: the AppSecret).")
@click.option("--time", "request_time", type=int, default=None,
              help="RequestTime in seconds; with --platform netease, CurTime in milliseconds (default: now).")
@click.option("--body", "body_file", type=click.File("rb"), default=None,
              help="NetEase: the body whose MD5 is signed (default: an empty body).")
@PLATFORM_OPTION
def sign_command(token: str, request_time: int | None, body_file, platform: str) -> None:
    """Print Sign and RequestTime for a token, as the IM computes them (NetEase: CurTime, MD5, CheckSum)."""
    from .signature import sign

    if platform == "netease":
        from .netease.auth import body_md5, checksum

        cur_time = int(time.time() * 1000) if request_time is None else request_time
        md5 = body_md5(body_file.read() if body_file else b"")
        click.echo(f"CurTime={cur_time}")
        click.echo(f"MD5={md5}")
        click.echo(f"CheckSum={checksum(token, md5, cur_time)}")
        return
    if body_file:
        raise click.UsageError("--body is for --platform netease: a Tencent Sign does not cover the body")
    request_time = int(time.time()) if request_time is None else request_time
    click.echo(f"RequestTime={request_time}")
    click.echo(f"Sign={sign(token, request_time)}")


@main.command()
@click.argument("file", type=click.File("rb"))
@click.option("--url", required=True, callback=checked_url, help="The receiver's callback URL (http:// or https://).")
@click.option("--token", default=None, help="Sign with this token (default: first of $IMHOOK_TOKEN).")
@click.option("--app-id", default=None, help="SdkAppid to send (default: $IMHOOK_APP_ID).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=SEND_TIMEOUT, show_default=True,
              help="Seconds to wait for the reply.")
@click.option("--app-key", default=None, help="NetEase: the AppKey to send (default: $IMHOOK_NETEASE_APP_KEY).")
@PLATFORM_OPTION
def send(file, url: str, token: str | None, app_id: str | None, timeout: float, app_key: str | None,
         platform: str) -> None:
    """Post a callback body FILE with a correct query string and signature; print the reply as JSON.

    NetEase (--platform netease): to its /netease/callback URL, signed with the AppSecret (--token,
    default: first of $IMHOOK_NETEASE_APP_SECRET) in the AppKey/CurTime/MD5/CheckSum headers.
    The status line goes to stderr, the reply (JSON) to stdout. Exits 0 on HTTP 200 with a JSON
    object, 3 on anything else (no answer, 401, 5xx, not JSON).
    """
    import requests

    from .client import callback_query, describe_failure, post_callback, post_netease
    from .config import is_app_id

    raw = file.read()
    if platform == "netease":
        app_key = app_key or os.environ.get("IMHOOK_NETEASE_APP_KEY")
        if not app_key:
            raise click.UsageError("no NetEase app key: pass --app-key or set IMHOOK_NETEASE_APP_KEY")
        token = token or (os.environ.get("IMHOOK_NETEASE_APP_SECRET", "").split(",")[0].strip() or None)
        try:
            result = post_netease(url, raw, app_key=app_key, secret=token, timeout=timeout)
        except requests.RequestException as exc:
            raise TargetError(describe_failure(exc, url, timeout)) from None
        click.echo(f"HTTP {result.status} in {result.elapsed_ms:.1f} ms", err=True)
        click.echo(json.dumps(result.reply, ensure_ascii=False, indent=2))
        if not result.ok:
            fail(reply_problem(result.status, result.reply, token, netease=True), EXIT_UNTESTED)
        return
    try:
        command = json.loads(raw)["CallbackCommand"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise click.UsageError(f"{file.name} is not a JSON object with a CallbackCommand; "
                               "pass a callback body such as tests/samples/tencent/State.StateChange.json") from None
    if not isinstance(command, str) or not command:
        raise click.UsageError(f"{file.name}: CallbackCommand must be a non-empty string")
    app_id = app_id or os.environ.get("IMHOOK_APP_ID")
    if not app_id:
        raise click.UsageError("no app id: pass --app-id or set IMHOOK_APP_ID")
    if not is_app_id(app_id):
        raise click.UsageError(f"--app-id / $IMHOOK_APP_ID {app_id!r} is not an SdkAppid (a whole number)")
    token = token or (os.environ.get("IMHOOK_TOKEN", "").split(",")[0].strip() or None)
    try:
        result = post_callback(url, raw, app_id=app_id, timeout=timeout,
                               query=callback_query(command, app_id, token=token))
    except requests.RequestException as exc:
        raise TargetError(describe_failure(exc, url, timeout)) from None
    click.echo(f"HTTP {result.status} in {result.elapsed_ms:.1f} ms", err=True)
    click.echo(json.dumps(result.reply, ensure_ascii=False, indent=2))
    if not result.ok:
        fail(reply_problem(result.status, result.reply, token), EXIT_UNTESTED)


def reply_problem(status: int, reply, token: str | None, *, netease: bool = False) -> str:
    """One line on why a reply is not a callback answer, with what to change."""
    secret, app = (("the AppSecret", "IMHOOK_NETEASE_APP_SECRET"), ("AppKey", "--app-key or IMHOOK_NETEASE_APP_KEY")) \
        if netease else (("the token", "IMHOOK_TOKEN"), ("SdkAppid", "--app-id or IMHOOK_APP_ID"))
    if status == 401:
        return ("HTTP 401: the receiver refused the signature; " + (f"is {secret[0]} right? " if token else "")
                + f"pass --token or set {secret[1]} to its {secret[0].split()[-1]}")
    if status == 403:
        return f"HTTP 403: the receiver serves another app; pass its {app[0]} with {app[1]}"
    if status >= 500:
        return f"HTTP {status}: the receiver failed; see its log"
    if status != 200:
        return f"HTTP {status}: the receiver did not accept the callback (see the reply above)"
    return "HTTP 200 but the reply is not a JSON object: the IM counts it as no reply"


def _register_more() -> None:
    """Subcommands that live beside what they drive."""
    from . import cli_rules

    cli_rules.register(main)
    for module in ("receiver.recording.cli", "receiver.console.cli", "emulator.cli"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name and not module.startswith(exc.name):
                raise
            continue
        sys.modules[module].register(main)


_register_more()


if __name__ == "__main__":
    main()
