"""The `recording:` config section (validated with the rest of the file by receiver/config.py)."""

from __future__ import annotations

from marshmallow import fields, validate

from ..config import PATH, Section

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
    batch_size = fields.Integer(load_default=200, validate=validate.Range(min=1, max=10_000))
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


SECTIONS = {"recording": RecordingSection}
