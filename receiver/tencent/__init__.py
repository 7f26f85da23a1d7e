"""Tencent Cloud IM: wire schemas, commands and replies."""
