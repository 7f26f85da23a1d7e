"""Messages: send (before-callback, reply, delivery, after-callback), recall and read reports."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..context import Context, StepError
from ..steps import Read, Recall, SendMessage
from ..world import C2C, GROUP, StoredMessage
from . import call_events, wire
from .signaling import decode_body
from .transport import DROP, REFUSE, read_message_reply

NO_PERMISSION = 10007  # the group refuses a non-member before any callback (Tencent error code)


@dataclass
class Delivery:
    outcome: str  # delivered, dropped, refused
    message: StoredMessage | None = None


def send_step(ctx: Context, action: SendMessage) -> None:
    delivery = send(ctx, action.actor, action.conversation, action.peer, list(action.body),
                    action.cloud_custom_data, online_only=action.online_only)
    if action.label is not None:
        ctx.world.labels[action.label] = delivery.message  # None: refused or dropped, nothing to recall


def send(ctx: Context, sender: str, conversation: str, peer: str, body: list, cloud_custom_data=None, *,
         online_only: bool = False, op: str = "send", counts_unread: bool = True) -> Delivery:
    """Send one message the way the IM handles it; return what became of it."""
    world = ctx.world
    if not ctx.require_online(sender, op):
        return Delivery(REFUSE)
    if conversation == GROUP and sender not in world.groups[peer].members:
        ctx.fail(sender, op, NO_PERMISSION, "not a group member")
        ctx.note(f"{sender} is not in {peer}: the IM refuses before any callback")
        return Delivery(REFUSE)
    msg_time = ctx.now_ms() // 1000
    msg_random = world.ids.msg_random()
    message = StoredMessage(
        conversation, sender, peer, seq=world.next_c2c_seq(sender, peer) if conversation == C2C else 0,
        random=msg_random, time=msg_time, msg_id=world.ids.msg_id(msg_time, msg_random),
        body=copy.deepcopy(body), cloud_custom_data=cloud_custom_data, online_only=online_only)
    group = world.groups.get(peer) if conversation == GROUP else None
    before = (wire.c2c_before_send(message, ctx.now_ms()) if group is None
              else wire.group_before_send(message, group, ctx.now_ms()))
    ruling = read_message_reply(ctx.post(sender, before), conversation, ctx.settings.on_failure)
    if ruling.outcome == REFUSE:
        ctx.fail(sender, op, ruling.code, ruling.info)
        return Delivery(REFUSE)
    if ruling.outcome == DROP:
        ctx.succeed(sender, op)  # a silent drop looks like success to the sender
        ctx.note("silently dropped: nothing is delivered and no after-callback follows")
        return Delivery(DROP)
    ctx.succeed(sender, op)
    _apply_rewrite(ctx, message, ruling)
    if group is not None:
        message.seq = world.next_group_seq(peer)
    world.messages.append(message)
    _deliver(ctx, message, counts_unread)
    if group is None:
        after = wire.c2c_after_send(message, world.c2c_unread_total(peer), ctx.now_ms())
    else:
        after = wire.group_after_send(message, group, ctx.now_ms())
    ctx.post_after(sender, after)
    return Delivery("delivered", message)


def _apply_rewrite(ctx: Context, message: StoredMessage, ruling) -> None:
    changed = False
    if ruling.body is not None and ruling.body != message.body:
        message.body, changed = copy.deepcopy(ruling.body), True
    if ruling.cloud_custom_data is not None and ruling.cloud_custom_data != message.cloud_custom_data:
        message.cloud_custom_data, changed = ruling.cloud_custom_data, True
    if changed:
        # The sender's copy is replaced by what was delivered (TIMMsgUpdateCallback, PROTOCOL.md §7).
        ctx.emit(message.sender, "message updated", _describe(message.body), local=True,
                 text=wire.body_text(message.body), body=message.body,
                 cloud_custom_data=message.cloud_custom_data)


def _recipients(ctx: Context, message: StoredMessage) -> list[str]:
    if message.conversation == C2C:
        return [message.peer]
    return [m for m in ctx.world.groups[message.peer].members if m != message.sender]


def _deliver(ctx: Context, message: StoredMessage, counts_unread: bool) -> None:
    world = ctx.world
    # AVChatRoom messages reach only members online at the time; nothing is stored for later.
    live_only = message.online_only or (message.conversation == GROUP
                                        and world.groups[message.peer].type == "AVChatRoom")
    offline_kept = []
    for recipient in _recipients(ctx, message):
        online = world.online(recipient)
        if not online and live_only:
            continue
        message.delivered_to.add(recipient)
        if counts_unread:
            world.mark_unread(message, recipient)
        if online:
            receive(ctx, message, recipient)
        else:
            offline_kept.append(recipient)
    if offline_kept:
        ctx.note(f"offline, kept for later (unread): {', '.join(offline_kept)}")


def receive(ctx: Context, message: StoredMessage, recipient: str) -> None:
    """What the recipient's client raises: a signaling event, or a new message."""
    signal = decode_body(message.body)
    if signal is not None:
        call_events.receive(ctx, message, signal, recipient)
        return
    where = "" if message.conversation == C2C else f" in {message.peer}"
    ctx.emit(recipient, "new message", f"from {message.sender}{where}: {_describe(message.body)}",
             sender=message.sender, conversation=message.conversation, peer=message.peer,
             text=wire.body_text(message.body), body=message.body,
             cloud_custom_data=message.cloud_custom_data)


def _describe(body: list) -> str:
    text = wire.body_text(body)
    kinds = [e.get("MsgType", "?") for e in body if isinstance(e, dict) and e.get("MsgType") != "TIMTextElem"]
    parts = ([repr(text)] if text else []) + kinds
    return " + ".join(parts) or "(empty)"


# --- recall and read ------------------------------------------------------------------------------

def recall_step(ctx: Context, action: Recall) -> None:
    world = ctx.world
    if action.label is not None:
        message = world.labels.get(action.label)
        if message is None or message.recalled:
            raise StepError(f"message {action.label} was {'recalled already' if message else 'never delivered'}")
        if message.sender != action.actor:
            raise StepError(f"{action.actor} cannot recall {action.label}: {message.sender} sent it")
    else:
        message = world.last_message(action.actor, peer=action.peer, group=action.group)
    if message is None:
        raise StepError(f"{action.actor} has no delivered message to recall")
    if not ctx.require_online(action.actor, "recall"):
        return
    message.recalled = True
    world.forget_unread(message)
    ctx.succeed(action.actor, "recall")
    for recipient in sorted(message.delivered_to):
        ctx.emit(recipient, "message recalled", f"by {action.actor}: {_describe(message.body)}",
                 sender=action.actor, msg_key=message.key)
    if message.conversation == C2C:
        body = wire.c2c_withdraw(message, world.c2c_unread_total(message.peer), ctx.now_ms())
    else:
        body = wire.group_recall(message, world.groups[message.peer], action.actor, ctx.now_ms())
    ctx.post_after(action.actor, body)


def read_step(ctx: Context, action: Read) -> None:
    world = ctx.world
    if not ctx.require_online(action.actor, "read"):
        return
    if action.group is not None:
        count = world.mark_read(action.actor, GROUP, action.group)
        ctx.note(f"{count} unread in {action.group} cleared; group read reports have no callback")
        return
    peers = [action.peer] if action.peer else sorted(
        {peer for (owner, kind, peer), n in world.unread.items() if owner == action.actor and kind == C2C})
    if not peers:
        ctx.note(f"{action.actor} has nothing unread: no read report is sent")
        return
    for peer in peers:
        world.mark_read(action.actor, C2C, peer)
        ctx.emit(peer, "read receipt", f"{action.actor} read the conversation", reader=action.actor)
        ctx.post_after(action.actor, wire.msg_report(action.actor, peer, world.c2c_unread_total(action.actor),
                                                     ctx.now_ms()))
