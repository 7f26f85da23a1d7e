"""Call steps: invite, accept, reject, cancel, time out — each one signaling message sent through
the ordinary message callbacks (PROTOCOL.md §6), with the invitation's state kept in the world."""

from __future__ import annotations

import json

from ..context import Context, StepError
from ..steps import AnswerCall, Call
from ..world import C2C, GROUP, Invitation
from . import messages, signaling
from .signaling import Signal
from .transport import REFUSE


def call_step(ctx: Context, action: Call) -> None:
    world = ctx.world
    group = world.groups[action.group] if action.group else None
    data = action.data if action.data is not None else signaling.call_data(action.media, world.ids.room_id())
    invitation = Invitation(world.ids.invite_id(), action.actor, action.invitees, action.group,
                            action.timeout, action.online_only, data)
    signal = Signal(signaling.INVITE, invitation.invite_id, action.actor, action.invitees, data,
                    action.timeout, group.group_id if group else "")
    # Known before delivery, so the invitees' clients can mark it received as they raise it.
    world.invitations.append(invitation)
    delivery = _send(ctx, invitation, action.actor, signal, "call")
    if delivery.outcome == REFUSE:
        world.invitations.remove(invitation)
        return
    missed = [u for u in action.invitees if u not in invitation.received]
    if missed:
        ctx.note(f"no invitation reached {', '.join(missed)}")


def answer_step(ctx: Context, action: AnswerCall) -> None:
    handler = {"accept": _respond, "reject": _respond, "cancel": _cancel, "timeout": _time_out}[action.action]
    handler(ctx, action)


def _send(ctx: Context, invitation: Invitation, sender: str, signal: Signal, op: str):
    """Invite and cancel go to the group or the (first) invitee; answers go to the group or the
    inviter (PROTOCOL.md §6). Signaling messages are kept out of unread counts (assumed: the
    SDK sends them excluded from unread)."""
    if invitation.group is not None:
        conversation, peer = GROUP, invitation.group
    elif sender == invitation.inviter:
        conversation, peer = C2C, invitation.invitees[0]
    else:
        conversation, peer = C2C, invitation.inviter
    return messages.send(ctx, sender, conversation, peer, [signaling.element(signal)],
                         online_only=invitation.online_only, op=op, counts_unread=False)


def _find_received(ctx: Context, user: str) -> Invitation:
    world = ctx.world
    invitation = world.latest_invitation(lambda i: i.pending(user) and user in i.received)
    if invitation is not None:
        return invitation
    if world.latest_invitation(lambda i: i.pending(user)) is not None:
        raise StepError(f"{user} is invited but her client never got the invitation "
                        "(refused, dropped, or she was offline)")
    raise StepError(f"{user} has no pending invitation")


def _respond(ctx: Context, action: AnswerCall) -> None:
    invitation = _find_received(ctx, action.actor)
    kind = signaling.ACCEPT if action.action == "accept" else signaling.REJECT
    data = action.data if action.data is not None else _with_busy(invitation.data, action.busy)
    signal = Signal(kind, invitation.invite_id, invitation.inviter, (action.actor,), data, 0,
                    _group_id(ctx, invitation))
    delivery = _send(ctx, invitation, action.actor, signal, action.action)
    if delivery.outcome != REFUSE:
        invitation.status[action.actor] = "accepted" if kind == signaling.ACCEPT else "rejected"


def _cancel(ctx: Context, action: AnswerCall) -> None:
    invitation = ctx.world.latest_invitation(lambda i: i.inviter == action.actor and i.open)
    if invitation is None:
        raise StepError(f"{action.actor} has no open invitation to cancel")
    pending = tuple(u for u in invitation.invitees if invitation.pending(u))
    data = action.data if action.data is not None else invitation.data
    signal = Signal(signaling.CANCEL, invitation.invite_id, action.actor, pending, data, 0,
                    _group_id(ctx, invitation))
    delivery = _send(ctx, invitation, action.actor, signal, "cancel")
    if delivery.outcome != REFUSE:
        for user in pending:
            invitation.status[user] = "cancelled"


def _time_out(ctx: Context, action: AnswerCall) -> None:
    user = action.actor
    invitation = ctx.world.latest_invitation(lambda i: i.pending(user))
    if invitation is None:
        raise StepError(f"{user} has no pending invitation to let time out")
    invitation.status[user] = "timeout"
    if user in invitation.received and ctx.world.online(user):
        ctx.emit(user, "invitation timeout", f"invitation from {invitation.inviter}", by=user,
                 invite_id=invitation.invite_id)
        signal = Signal(signaling.TIMEOUT, invitation.invite_id, invitation.inviter, (user,),
                        invitation.data, 0, _group_id(ctx, invitation))
        _send(ctx, invitation, user, signal, "timeout")
        return
    # The invitee's client never had it, so it sends nothing; the inviter's own timer fires.
    # (What the IM does here is not documented; this is the emulator's reading.)
    ctx.emit(invitation.inviter, "invitation timeout", f"by {user} (inviter's timer)", by=user,
             invite_id=invitation.invite_id)
    ctx.note(f"{user} never received the invitation: no timeout message is sent")


def _group_id(ctx: Context, invitation: Invitation) -> str:
    return ctx.world.groups[invitation.group].group_id if invitation.group else ""


def _with_busy(data: str, busy: bool) -> str:
    if not busy:
        return data
    try:
        payload = json.loads(data)
    except ValueError:
        return data
    if isinstance(payload, dict):
        payload["line_busy"] = "line_busy"
        return json.dumps(payload, separators=(",", ":"))
    return data
