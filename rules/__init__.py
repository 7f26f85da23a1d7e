"""imhook rules: small objects in an ordered chain that decide Before* callbacks.

Light on purpose: importing `rules` pulls in neither Flask nor any rule's dependencies.
"""

from receiver.verdict import (  # noqa: F401  (the public vocabulary of a rule)
    FriendResult,
    Verdict,
    allow,
    drop,
    refuse,
    refuse_friends,
    refuse_members,
    rewrite,
)

from .base import Rule, RuleContext  # noqa: F401
