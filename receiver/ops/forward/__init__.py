"""Forward After* callbacks to downstream HTTP endpoints through a durable SQLite outbox."""
