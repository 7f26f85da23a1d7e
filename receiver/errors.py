"""The one error hierarchy of imhook; HTTP-facing errors carry their status, every error its exit code."""

from __future__ import annotations

# The exit codes of every `imhook` command (docs/cli.md).
EXIT_OK = 0
EXIT_CHANGED = 1  # decisions changed (replay --fail-on-change), expectations failed (emulate)
EXIT_USAGE = 2  # bad arguments, a bad config or input file, an output that cannot be written
EXIT_UNTESTED = 3  # nothing was tested, or the target failed: unreachable, every reply 401/5xx, records errored


class ImhookError(Exception):
    """Base of every error imhook raises on purpose."""

    status = 500
    exit_code = EXIT_USAGE

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RequestError(ImhookError):
    """The request cannot be answered as a callback; `status` says why."""

    status = 400


class BadRequest(RequestError):
    status = 400


class Unauthorized(RequestError):
    status = 401


class Forbidden(RequestError):
    status = 403


class NotFound(RequestError):
    status = 404


class MethodNotAllowed(RequestError):
    status = 405


class PayloadTooLarge(RequestError):
    status = 413


class InvalidBody(BadRequest):
    """The body is JSON but does not match the command's schema."""

    def __init__(self, command: str, field_errors: dict):
        self.command = command
        self.field_errors = field_errors
        fields = "; ".join(f"{path}: {msg}" for path, msg in flatten_errors(field_errors))
        super().__init__(f"invalid {command} body: {fields}")


class ConfigError(ImhookError):
    """A configuration file is wrong; names the file, the YAML path and line."""

    def __init__(self, message: str, *, file: str | None = None, path: str = "", line: int | None = None):
        self.file, self.path, self.line, self.detail = file, path, line, message
        where = file or "<config>"
        if line is not None:
            where += f":{line}"
        if path:
            where += f": {path}"
        super().__init__(f"{where}: {message}")


class TargetError(ImhookError):
    """A command's target (a running receiver) cannot be reached or refused everything."""

    exit_code = EXIT_UNTESTED


class RuleError(ImhookError):
    """A rule failed while deciding (raised, returned nonsense or overran its budget)."""


def flatten_errors(errors, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten marshmallow's nested error dict into (dotted.path, message) pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(body)"
            out.extend(flatten_errors(value, path))
    elif isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        out.append((prefix or "(body)", " ".join(errors)))
    elif isinstance(errors, list):
        for item in errors:
            out.extend(flatten_errors(item, prefix))
    else:
        out.append((prefix or "(body)", str(errors)))
    return out
