"""Deterministic ids (seeded) and a wall clock, shared by every emulated IM."""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import Callable


class Ids:
    """Deterministic ids (seeded) and a wall clock that never repeats a millisecond.

    Times stay on the wall clock because the receiver checks RequestTime against its own clock.
    """

    def __init__(self, seed: int = 0, clock: Callable[[], float] = time.time):
        self.rng = random.Random(seed)
        self.clock = clock
        self._last_ms = 0
        self._msg_ids = 0

    def now_ms(self) -> int:
        self._last_ms = max(int(self.clock() * 1000), self._last_ms + 1)
        return self._last_ms

    def msg_random(self) -> int:
        return self.rng.randint(1, 2**31 - 1)

    def msg_id(self, msg_time: int, msg_random: int) -> str:
        # The shape of recent MsgId values ("<server id>-<MsgTime>-<MsgRandom>"); the first part
        # is opaque, so any growing number serves.
        self._msg_ids += 1
        return f"{144115200000000000 + self._msg_ids}-{msg_time}-{msg_random}"

    def group_id(self, group_type: str) -> str:
        """An IM-assigned GroupId: "@TGS#" and a type-dependent prefix as the console shows them."""
        prefix = {"AVChatRoom": "a", "Community": "_", "Public": "2", "ChatRoom": "3", "Meeting": "3"}
        tail = "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(8))
        return f"@TGS#{prefix.get(group_type, '1')}{tail}"

    def invite_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def room_id(self) -> int:
        return self.rng.randint(100000, 999999999)
