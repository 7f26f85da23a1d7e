"""What a client raises when a signaling message reaches it (PROTOCOL.md §6–7).

The events follow the delivered message, decoded as the client SDK decodes it, so a receiver
that rewrites or drops a signaling message changes what the clients see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .signaling import ACCEPT, CANCEL, INVITE, REJECT, TIMEOUT, Signal

if TYPE_CHECKING:
    from ..context import Context
    from ..world import StoredMessage

_RESPONSE_EVENTS = {ACCEPT: "invitation accepted", REJECT: "invitation rejected", TIMEOUT: "invitation timeout"}


def receive(ctx: "Context", message: "StoredMessage", signal: Signal, recipient: str) -> None:
    invitation = ctx.world.invitation(signal.invite_id)
    if signal.action == INVITE:
        # A group invitation reaches every member; only those invited see it (the SDK filters).
        if recipient in signal.invitees:
            ctx.emit(recipient, "invitation", f"from {signal.inviter} ({_media(signal.data)})",
                     inviter=signal.inviter, invite_id=signal.invite_id, data=signal.data,
                     group=message.peer if message.conversation == "group" else "")
            if invitation is not None:
                invitation.received.add(recipient)
        return
    if signal.action == CANCEL:
        if recipient in signal.invitees and (invitation is None or recipient in invitation.received):
            ctx.emit(recipient, "invitation cancelled", f"by {signal.inviter}", inviter=signal.inviter,
                     invite_id=signal.invite_id)
        return
    # accept / reject / timeout: the inviter and, in a group, the other invitees who were invited.
    responder = signal.invitees[0] if signal.invitees else message.sender
    # Invitees who already timed out, rejected or were cancelled are done with this invitation.
    others = {u for u in invitation.received if invitation.status.get(u) in ("pending", "accepted")} \
        if invitation is not None else set()
    concerned = {signal.inviter} | others
    if recipient in concerned and recipient != responder:
        ctx.emit(recipient, _RESPONSE_EVENTS[signal.action], f"by {responder}", by=responder,
                 invite_id=signal.invite_id)


def _media(data: str) -> str:
    if '"call_type":2' in data.replace(" ", ""):
        return "video call"
    if '"call_type":1' in data.replace(" ", ""):
        return "audio call"
    return "custom data"
