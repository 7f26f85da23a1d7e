-- The web console (receiver/console/queries.py) lists records newest first under one equality
-- filter (outcome, rule or user; command has recordings_command): each index serves its filter in
-- that order without a sort, as the SQLite store's do (receiver/recording/store.py).
CREATE INDEX recordings_outcome_time ON recordings (outcome, received_at);
CREATE INDEX recordings_rule_time ON recordings (rule, received_at);
CREATE INDEX recordings_user_time ON recordings ("user", received_at);
-- ("user", received_at) serves every lookup the old ("user") index did: one index less per insert.
DROP INDEX recordings_user;
