-- recordings.received_at is written in nearly the order of id (records arrive as they are
-- received; a journal drained after an outage is a few minutes late at most), so a BRIN index, a
-- few pages summarising ranges of table blocks, finds a time range (--since/--until) nearly as a
-- B-tree does, while an insert costs it almost nothing instead of one B-tree insertion per row
-- (benchmarks/stores.py: ~1.5 µs less backend CPU per record). autosummarize: each range is
-- summarised by autovacuum once filled, not only at the next VACUUM (an unsummarised range is
-- read whole by every time-range query). Retention walks the primary key (pgstore.py). The
-- command and user indexes stay: without them a --command or --user export reads the whole table.
DROP INDEX recordings_time;
CREATE INDEX recordings_time ON recordings USING brin (received_at) WITH (autosummarize = on);
