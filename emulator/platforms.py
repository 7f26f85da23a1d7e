"""The IMs the emulator plays, and what a scenario may do on each (checked when it is loaded)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .grammar import SentenceError
from .steps import Check, Recall, SendMessage, Wait

TENCENT, NETEASE = "tencent", "netease"
PLATFORMS = (TENCENT, NETEASE)

# NetEase `fromClientType` names (PROTOCOL.md §8); WINPHONE is an older one.
NETEASE_CLIENT_TYPES = ("AOS", "IOS", "PC", "WEB", "REST", "MAC", "HARMONY", "WINPHONE")
DEFAULT_DEVICE = {TENCENT: "Android", NETEASE: "AOS"}

# What the NetEase emulation covers so far: message sends and recalls (docs/emulator.md).
NETEASE_STEPS = (SendMessage, Recall, Wait, Check)


def default_device(platform: str, device: str | None) -> str:
    """The device a user acts from: checked against NetEase's client types there."""
    if device is None:
        return DEFAULT_DEVICE[platform]
    if platform == NETEASE:
        if device.upper() not in NETEASE_CLIENT_TYPES:
            raise SentenceError(f"unknown NetEase client type {device!r}; one of {', '.join(NETEASE_CLIENT_TYPES)}")
        return device.upper()
    return device


def check_steps(platform: str, steps: Iterable) -> Iterator[tuple[object, str]]:
    """Yield (step, problem) for each step the chosen IM cannot play."""
    for step in steps:
        action = step.action
        if platform == NETEASE:
            if not isinstance(action, NETEASE_STEPS):
                yield step, (f"{step.sentence!r} is not emulated for NetEase yet: a NetEase scenario sends "
                             "messages, recalls them, waits and checks")
            elif isinstance(action, SendMessage) and (action.cloud_custom_data is not None or _elements(action)):
                yield step, ("a NetEase message is \"TEXT\" in the sentence, with optional `attach` and `ext`; "
                             "`elements` and `cloud_custom_data` are Tencent's")
            elif isinstance(action, Recall) and action.device is not None:
                try:
                    default_device(platform, action.device)
                except SentenceError as exc:
                    yield step, exc.message
        elif isinstance(action, Recall) and (action.device is not None or action.age_seconds is not None):
            yield step, "`on DEVICE` and `after N s` in a recall are NetEase's; a Tencent recall is immediate"
        elif isinstance(action, SendMessage) and (action.attach is not None or action.ext is not None):
            yield step, "`attach` and `ext` are NetEase's; a Tencent message takes `elements` and `cloud_custom_data`"


def _elements(action: SendMessage) -> bool:
    """True when the body is more than the one text element a sentence's "TEXT" makes."""
    body = action.body
    return not (len(body) == 1 and body[0].get("MsgType") == "TIMTextElem")
