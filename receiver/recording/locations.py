"""Where a recording lives, from its `recording:` settings: the store (SQLite file or PostgreSQL URL),
the journal folder, the quarantine file. Apart from settings.py, which imports receiver.config
(that imports every part's settings): the writer and the command line read these without it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

DEFAULT_STORE_ENV = "IMHOOK_RECORDING_DSN"
# With a PostgreSQL store and no journal_dir: the journal folder, beside the config file.
DEFAULT_URL_JOURNAL_DIR = "imhook-journal"
JOURNAL_MAX_BYTES = 1024**3  # per worker: a database down for long must not fill the disk
URL_SCHEMES = ("postgresql://", "postgres://")


def store_url(settings: Mapping[str, Any], env: Mapping[str, str] | None = None, *, section: str = "recording",
              keys: tuple[str, str, str] = ("store", "store_env", "store_file"),
              default_env: str = DEFAULT_STORE_ENV) -> str | None:
    """The PostgreSQL URL the recording uses, or None for SQLite (see `store` above).

    `section`, `keys` (the URL, its variable's name, its file) and `default_env` let the forwarding
    outbox find its URL the same way (receiver/ops/forward/pgoutbox.py); in that section the URL key
    may also hold a SQLite path, which is not an error but "no PostgreSQL".
    """
    env = os.environ if env is None else env
    url_key, env_key, file_key = keys
    variable = settings.get(env_key) or default_env
    url, origin = env.get(variable, "").strip(), f"${variable}"
    if not url and settings.get(file_key):
        origin = f"{section}.{file_key} {settings[file_key]}"
        try:
            url = Path(settings[file_key]).read_text(encoding="utf-8").strip().partition("\n")[0].strip()
        except (OSError, UnicodeDecodeError) as exc:  # name the file, never its content
            raise ConfigError(f"cannot read {origin}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}") from None
    if not url:
        url, origin = settings.get(url_key) or "", f"{section}.{url_key}"
        if section != "recording" and not url.startswith(URL_SCHEMES):
            return None  # forwarding.outbox: a SQLite path
    if not url:
        return None
    if not url.startswith(URL_SCHEMES):
        raise ConfigError(f"{origin} must hold a postgresql:// URL")
    return url


def journal_dir(settings: Mapping[str, Any], url: str | None) -> str | None:
    """recording.journal_dir; with a PostgreSQL store and none set, `imhook-journal` beside the config
    (recording.path is resolved against the config's folder, so its folder is that folder)."""
    if settings.get("journal_dir") or url is None:
        return settings.get("journal_dir")
    return str(Path(settings["path"]).parent / DEFAULT_URL_JOURNAL_DIR)


def quarantine_path(path: str | Path, url: str | None, journal_dir: str | Path | None) -> Path:
    """Where records the store refused are kept: beside the SQLite file, or with PostgreSQL beside
    the journal folder (`imhook-journal.quarantine.jsonl`)."""
    from .quarantine import SUFFIX, path_for

    if url is None:
        return path_for(path)
    folder = Path(journal_dir or Path(path).parent / DEFAULT_URL_JOURNAL_DIR)
    return folder.with_name(folder.name + SUFFIX)
