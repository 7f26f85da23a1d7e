"""The NetEase IM (Yunxin / CommsEase): its callback wire, its replies, and message send and recall.

Built from PROTOCOL.md §8; what it marks unverified is marked so here too.
"""
