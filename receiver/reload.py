"""Load the config and build the chain; keep the last good one when a new file is bad.

Under gunicorn, the master validates the file at start and on every HUP (gunicorn.conf.py) and keeps
the last good text in memory; workers are forked from the master, so a worker started after a bad
HUP still boots with the old rules. With `reload.watch`, each worker also polls the file and swaps
its chain in place without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .config import Config, config_path, parse_config
from .errors import ImhookError
from .threadnames import name_this_thread

log = logging.getLogger("imhook.reload")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    text: str


LAST_GOOD: Snapshot | None = None


def read_snapshot(path: Path | None = None) -> Snapshot:
    path = Path(path) if path else config_path()
    try:
        return Snapshot(path, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        from .config import NOT_TEXT
        from .errors import ConfigError

        why = f"cannot read config file: {exc.strerror}" if isinstance(exc, OSError) else NOT_TEXT
        raise ConfigError(why, file=str(path)) from None


def build(snapshot: Snapshot, platform=None):
    """Parse and build (config, chain) from a snapshot; raises ImhookError when it is bad."""
    from rules.loader import build_chain

    config = parse_config(snapshot.text, str(snapshot.path), dict(os.environ), base_dir=snapshot.path.parent)
    return config, build_chain(config, platform=platform)


def validate_and_remember(path: Path | None = None) -> bool:
    """Master side: validate the file; remember it if good, keep the previous one if not."""
    global LAST_GOOD
    try:
        snapshot = read_snapshot(path)
        from .platforms import Platforms

        _, chain = build(snapshot, Platforms())
        chain.close()
    except ImhookError as exc:
        if LAST_GOOD is None:
            raise
        log.error("new config rejected, the previous rules keep running: %s", exc)
        return False
    LAST_GOOD = snapshot
    log.info("config %s loaded", snapshot.path)
    return True


def check_start_up(path: Path | None = None):
    """What the gunicorn master checks before any worker starts, and `imhook check` with it: the
    config and its rules, then that the files it will write can be created here. Remembers the
    snapshot as the last good one; returns (config, chain), the caller closes the chain."""
    global LAST_GOOD
    from .config import check_output_paths
    from .platforms import Platforms

    snapshot = read_snapshot(path)
    config, chain = build(snapshot, Platforms())
    try:
        check_output_paths(config)
        from .recording.pgschema import check_at_start

        check_at_start(config.sections.get("recording") or {})  # a PostgreSQL store behind the code's schema
        from .ops.forward.pgoutbox import check_at_start as check_outbox_at_start

        check_outbox_at_start(config.sections.get("forwarding") or {})  # and a PostgreSQL outbox
        from .console.web import check_at_start as check_console_at_start

        check_console_at_start(config)  # a console mounted without a password
    except ImhookError:
        chain.close()
        raise
    LAST_GOOD = snapshot
    log.info("config %s loaded", snapshot.path)
    return config, chain


def initial_snapshot(path: Path | None = None) -> Snapshot:
    """The snapshot a worker should start from: the master's last good one, else the file."""
    if path is None and LAST_GOOD is not None:
        return LAST_GOOD
    return read_snapshot(path)


class FileWatcher:
    """Poll the config file's mtime and swap the receiver's chain when it changes."""

    def __init__(self, receiver, snapshot: Snapshot, interval: float):
        self.receiver, self.snapshot, self.interval = receiver, snapshot, interval
        self._stop = threading.Event()
        self._mtime = self._stat()
        self._thread = threading.Thread(target=self._run, name="imhook-config-watch", daemon=True)

    def start(self) -> "FileWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _stat(self) -> float:
        try:
            return self.snapshot.path.stat().st_mtime
        except OSError:
            return 0.0

    def _run(self) -> None:
        name_this_thread()
        while not self._stop.wait(self.interval):
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                self.check_now()

    def check_now(self) -> bool:
        """Reload now; True if the new rules are in force."""
        try:
            snapshot = read_snapshot(self.snapshot.path)
            config, chain = build(snapshot, self.receiver.platform)
        except ImhookError as exc:
            log.error("config change rejected, the previous rules keep running: %s", exc)
            return False
        self.receiver.swap(config, chain)
        log.info("config %s reloaded: %d rules", snapshot.path, len(chain.entries))
        return True
