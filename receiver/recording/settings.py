"""The `recording:` config section (validated with the rest of the file by receiver/config.py)."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates

from ..config import PATH, Section
from .locations import DEFAULT_STORE_ENV, JOURNAL_MAX_BYTES, URL_SCHEMES

DEFAULT_PATH = "imhook-recordings.sqlite"


class RecordingSection(Section):
    # On by default: replaying real traffic is how a rule change is checked before it ships, and a
    # recording that starts only after the incident is no help. retention_days bounds the disk.
    enabled = fields.Boolean(load_default=True)
    # A relative path is resolved against the config file's folder (receiver/config.py), so the
    # server and `imhook recordings --config` find the same file from any working directory; the
    # bundled default config's against the working directory.
    path = fields.String(load_default=DEFAULT_PATH, validate=validate.Length(min=1), metadata=PATH)
    queue_size = fields.Integer(load_default=10_000, validate=validate.Range(min=1, max=1_000_000))
    # Rows per insert transaction, at most: a batch still waits no longer than flush_interval_seconds.
    # Each commit writes every page it touched once more (the random-ordered `user` index's above all):
    # 1000 rows wrote ~15-25 % fewer bytes per row than 200 (benchmarks/RESULTS.md, issue 16 step 7).
    batch_size = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    flush_interval_seconds = fields.Float(load_default=0.5, validate=validate.Range(min=0.01, max=60))
    keep_sign = fields.Boolean(load_default=False)
    store_text = fields.Boolean(load_default=True)
    hash_user_ids = fields.Boolean(load_default=False)
    user_id_salt_env = fields.String(load_default="IMHOOK_RECORDING_SALT", validate=validate.Length(min=1))
    retention_days = fields.Float(load_default=7.0, allow_none=True, validate=validate.Range(min=0))
    max_rejected_per_minute = fields.Integer(load_default=60, validate=validate.Range(min=0))
    max_rejected_body_bytes = fields.Integer(load_default=4096, validate=validate.Range(min=0))
    # Each worker appends every record to a journal file before queueing it, so a worker killed
    # (SIGKILL, OOM) loses nothing it answered. false: memory only, as fast, lost on a crash.
    journal = fields.Boolean(load_default=True)
    # null: `<path>.journal/` beside the database. One folder per database: whatever a dead worker
    # left in it is imported into this worker's database.
    journal_dir = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1), metadata=PATH)
    # A record not stored this many seconds after it was answered (the writer dead, stuck, or the
    # database failing) makes /readyz answer 503 with the reason. A healthy pipeline drains in
    # well under 10 s (flush_interval_seconds, plus a journal rotation of 5 s).
    stall_seconds = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=86400))
    # Where records are stored. null: the embedded SQLite file at `path`. A postgresql:// URL: a
    # PostgreSQL database shared by every instance (docs/recording.md, "PostgreSQL"). The URL, with
    # its password, may instead come from the environment variable named by store_env, or from the
    # file store_file (first line); the environment wins, then the file, then `store`.
    store = fields.String(load_default=None, allow_none=True)
    store_env = fields.String(load_default=DEFAULT_STORE_ENV, validate=validate.Length(min=1))
    store_file = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1), metadata=PATH)
    # Each worker's journal holds what is not stored yet; with the database down it grows. Past this
    # many bytes a worker journals no more: records wait in the queue only, and are counted and
    # logged as lost when that is full too or the worker dies.
    journal_max_bytes = fields.Integer(load_default=JOURNAL_MAX_BYTES, validate=validate.Range(min=1024**2))

    @validates("store")
    def _store_is_a_url(self, value: str | None, **_) -> None:
        if value is not None and not value.startswith(URL_SCHEMES):
            raise ValidationError("must be a postgresql:// URL (or null for the SQLite file at recording.path)")


SECTIONS = {"recording": RecordingSection}

