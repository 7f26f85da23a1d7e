-- The recordings table, as the SQLite store has it (receiver/recording/store.py), for PostgreSQL.
-- "user" is quoted: USER is a reserved word here. rejected and body_truncated stay 0/1 integers so
-- the two stores share one row format. The body is BYTEA (the raw bytes, NUL included); every
-- TEXT column is written with NUL and lone surrogates as their \u0000 / \udXXX escapes.
CREATE TABLE recordings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at DOUBLE PRECISION NOT NULL,
    command TEXT NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    status INTEGER,
    rejected INTEGER NOT NULL DEFAULT 0,
    elapsed_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
    query TEXT NOT NULL,
    body BYTEA,
    body_truncated INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    trace TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'live',
    redacted TEXT NOT NULL DEFAULT '',
    key TEXT
);
CREATE INDEX recordings_time ON recordings (received_at);
CREATE INDEX recordings_command ON recordings (command, received_at);
CREATE INDEX recordings_user ON recordings ("user");
-- A record replayed from a journal twice is stored once (INSERT ... ON CONFLICT (key) DO NOTHING);
-- NULL keys never collide.
CREATE UNIQUE INDEX recordings_key ON recordings (key);
