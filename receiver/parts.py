"""imhook's parts beyond the core (recording, operations) plug in by module-name convention.

Each part `P` provides `P.settings.SECTIONS` (its config sections), `P.web.install(app, receiver)`
(routes, observers, background workers) and `P.hooks` (gunicorn hooks by name). Imported lazily:
the config module must exist before a part's settings can import from it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Order matters: operations look for the recorder that the recording part installs; the console,
# mounted last, wraps the app the others built.
PARTS = ("receiver.recording", "receiver.ops", "receiver.console")


def modules(kind: str) -> list[ModuleType]:
    """Import `<part>.<kind>` of every part: kind is "settings", "web" or "hooks"."""
    return [importlib.import_module(f"{part}.{kind}") for part in PARTS]
