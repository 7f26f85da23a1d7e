"""NetEase message sends (events 1 and 2) and recalls (event 35), and what each client sees."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..context import Context, StepError
from ..steps import Recall, SendMessage
from ..tencent.wire import body_text
from ..world import C2C, GROUP
from . import wire
from .transport import DROP, REFUSE, read_message_reply, read_recall_reply

# "Recalling after the configured period fails with 508" (official SDK docs). The period is the
# scenario's `recall_window_seconds` (default 2 minutes, as the console's default). Unverified:
# whether the IM checks it before or after calling back; the emulator checks first and sends nothing.
RECALL_PERIOD_OVER = 508
CLIENT_PORT = 50000  # fromClientPort: the sample's is masked, any port serves


@dataclass
class NeteaseMessage:
    """A message as the NetEase IM stores it; shaped so World's unread and recall helpers apply."""

    conversation: str  # c2c or group (a team)
    sender: str
    peer: str  # recipient account, or the team's alias in the scenario
    to: str  # `to` on the wire: the account, or the team id
    device: str  # the client type it was sent from
    msg_id: str  # the server's id, digits
    msgid_client: str
    timestamp_ms: int
    body: str
    msg_type: str = "TEXT"
    attach: str | None = None
    ext: str | None = None
    callback_ext: str | None = None
    delivered_to: set[str] = field(default_factory=set)
    unread_by: set[str] = field(default_factory=set)
    recalled: bool = False


def send_step(ctx: Context, action: SendMessage) -> None:
    message = send(ctx, action)
    if action.label is not None:
        ctx.world.labels[action.label] = message  # None: refused or dropped, nothing to recall


def send(ctx: Context, action: SendMessage) -> NeteaseMessage | None:
    """Send one message the way the NetEase IM handles it; return it if it was delivered."""
    world, sender = ctx.world, world_user(ctx, action.actor)
    group = world.groups.get(action.peer) if action.conversation == GROUP else None
    if group is not None and action.actor not in group.members:
        raise StepError(f"{action.actor} is not in {action.peer} (NetEase's error for this is not emulated)")
    now = ctx.now_ms()
    message = NeteaseMessage(
        action.conversation, action.actor, action.peer, group.group_id if group else action.peer,
        sender.platform, msg_id=str(world.ids.rng.randint(10**15, 10**16 - 1)),
        msgid_client=uuid.UUID(int=world.ids.rng.getrandbits(128), version=4).hex, timestamp_ms=now,
        body=body_text(action.body), attach=action.attach, ext=action.ext)
    exchange = ctx.post(action.actor, wire.message_event(message, sender.client_ip, CLIENT_PORT))
    ruling = read_message_reply(exchange, ctx.settings.on_failure)
    if ruling.outcome == REFUSE:
        ctx.fail(action.actor, "send", ruling.code)
        return None
    ctx.succeed(action.actor, "send")  # a silent drop looks like success to the sender
    if ruling.outcome == DROP:
        ctx.note("silently dropped: nothing is delivered")
        return None
    for key, value in (ruling.rewrite or {}).items():
        setattr(message, key, value)
    if ruling.rewrite:
        # Unverified: whether the sender's own copy shows the rewrite; recipients get the new text.
        ctx.note(f"rewritten by the receiver: {', '.join(ruling.rewrite)}")
    message.callback_ext = ruling.callback_ext
    world.messages.append(message)
    _deliver(ctx, message)
    return message


def _deliver(ctx: Context, message: NeteaseMessage) -> None:
    world = ctx.world
    recipients = ([message.peer] if message.conversation == C2C else
                  [m for m in world.groups[message.peer].members if m != message.sender])
    kept = []
    for recipient in recipients:
        message.delivered_to.add(recipient)
        world.mark_unread(message, recipient)
        where = "" if message.conversation == C2C else f" in {message.peer}"
        if not ctx.emit(recipient, "new message", f"from {message.sender}{where}: {message.body!r}",
                        sender=message.sender, conversation=message.conversation, peer=message.peer,
                        text=message.body, attach=message.attach, ext=message.ext,
                        callback_ext=message.callback_ext):
            kept.append(recipient)
    if kept:
        ctx.note(f"offline, kept for later (unread): {', '.join(kept)}")


def recall_step(ctx: Context, action: Recall) -> None:
    world = ctx.world
    message = _recalled_message(ctx, action)
    user = world_user(ctx, action.actor)
    device = action.device or user.platform
    if device not in user.platforms:
        raise StepError(f"{action.actor} is not online on {device} (online on: {', '.join(user.platforms)})")
    now = ctx.now_ms()
    age_ms = int(action.age_seconds * 1000) if action.age_seconds is not None else now - message.timestamp_ms
    if age_ms > ctx.settings.recall_window_seconds * 1000:
        ctx.fail(action.actor, "recall", RECALL_PERIOD_OVER, "recall period over")
        ctx.note(f"{age_ms / 1000:g} s after sending, over the IM's {ctx.settings.recall_window_seconds:g} s: "
                 "refused by the IM before any callback")
        return
    body = wire.recall_event(message, action.actor, now - age_ms, now)
    ruling = read_recall_reply(ctx.post(action.actor, body, platform=device), ctx.settings.on_failure)
    if ruling.outcome == REFUSE:
        ctx.fail(action.actor, "recall", ruling.code)
        return
    message.recalled = True
    world.forget_unread(message)
    ctx.succeed(action.actor, "recall", device=device)
    _notify_recall(ctx, message, action.actor, device)


def _notify_recall(ctx: Context, message: NeteaseMessage, operator: str, operator_device: str) -> None:
    """Recall is two-way: every online device of both sides (every member in a team) gets the
    message-update notification, except the device that recalled (official SDK docs)."""
    world = ctx.world
    parties = ([message.sender, message.peer] if message.conversation == C2C
               else list(world.groups[message.peer].members))
    for party in dict.fromkeys(parties):
        for device in world.users[party].platforms:
            if (party, device) == (operator, operator_device):
                continue
            ctx.emit(party, "message recalled", f"on {device}: {message.body!r} by {operator}", device=device,
                     sender=message.sender, operator=operator, msg_id=message.msg_id)


def _recalled_message(ctx: Context, action: Recall) -> NeteaseMessage:
    world = ctx.world
    if action.label is not None:
        message = world.labels.get(action.label)
        if message is None or message.recalled:
            raise StepError(f"message {action.label} was {'recalled already' if message else 'never delivered'}")
    else:
        message = world.last_message(action.actor, peer=action.peer, group=action.group)
        if message is None:
            raise StepError(f"{action.actor} has no delivered message to recall")
    group = world.groups.get(message.peer) if message.conversation == GROUP else None
    # A team's owner and managers may recall members' messages too (unverified for NetEase teams).
    if message.sender != action.actor and not (group and group.can_review(action.actor)):
        raise StepError(f"{action.actor} cannot recall {action.label or 'that message'}: {message.sender} sent it")
    return message


def world_user(ctx: Context, name: str):
    """The user acting, who must be online: a NetEase client logged out cannot send or recall."""
    user = ctx.world.users[name]
    if not user.online:
        raise StepError(f"{name} is offline: log her in first (NetEase's error for this is not emulated)")
    return user
