-- The forwarding outbox shared by every imhook instance (receiver/ops/forward/pgoutbox.py): the
-- SQLite outbox's row (receiver/ops/forward/outbox.py) plus a claim. A sender on any instance
-- claims the due head of a conversation for one delivery attempt: claimed_by names it, lease_until
-- (epoch seconds, the database's clock) is when the claim lapses and another sender may take the
-- row. TEXT columns hold NUL as \u0000, as the recordings do; the body is the raw bytes.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target TEXT NOT NULL,
    dedupe TEXT NOT NULL,
    conversation TEXT NOT NULL,
    command TEXT NOT NULL,
    app_id TEXT NOT NULL,
    body BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    done_at DOUBLE PRECISION,
    claimed_by TEXT,
    lease_until DOUBLE PRECISION,
    -- A callback the IM sends twice, to one instance or two, is one row per target.
    UNIQUE (target, dedupe)
);
-- The heads of conversations: the oldest pending row per (target, conversation), by the time an
-- instance received it (an event spooled during an outage is relayed late but keeps its place).
CREATE INDEX outbox_heads ON outbox (target, conversation, created_at, id) WHERE status = 'pending';
CREATE INDEX outbox_done ON outbox (done_at) WHERE status = 'delivered';
