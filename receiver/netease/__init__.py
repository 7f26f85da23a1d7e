"""NetEase IM (Yunxin / CommsEase): header authentication, event schemas and replies (PROTOCOL.md §8)."""
