"""Friends (add, respond, delete) and sessions (login, logout, disconnect)."""

from __future__ import annotations

from ..context import Context, StepError
from ..steps import AddFriend, DeleteFriend, Login, Logout, RespondFriend
from ..world import FriendApplication
from . import wire
from .transport import read_friend_reply

# Tencent error/result codes the emulator reproduces (from the IM's error-code table, not from
# PROTOCOL.md): 30516 the user refuses all friend requests; 30539 the request awaits approval.
DENIES_REQUESTS = 30516
AWAITS_APPROVAL = 30539


def add_friend_step(ctx: Context, action: AddFriend) -> None:
    world, actor = ctx.world, action.actor
    if not ctx.require_online(actor, "add"):
        return
    already = [f for f in action.friends if f in world.users[actor].friends]
    if already:
        ctx.note(f"already on {actor}'s list, not requested again: {', '.join(already)}")
    friends = tuple(f for f in action.friends if f not in already)
    if not friends:
        return
    source = f"AddSource_Type_{world.users[actor].platform}"
    exchange = ctx.post(actor, wire.prev_friend_add(_with_friends(action, friends), ctx.now_ms(), source))
    ruling = read_friend_reply(exchange, friends)
    pairs: list[tuple[str, str]] = []
    for friend in friends:
        if friend in ruling.friend_results:
            code, info = ruling.friend_results[friend]
            ctx.fail(actor, "add", code, info, friend=friend)
            continue
        allow = world.users[friend].add_friend
        if allow == "deny":
            ctx.fail(actor, "add", DENIES_REQUESTS, f"{friend} accepts no friend requests", friend=friend)
        elif allow == "any":
            pairs += [(actor, friend)] + ([(friend, actor)] if action.add_type == "Add_Type_Both" else [])
        else:
            world.friend_applications = [a for a in world.friend_applications
                                         if (a.requester, a.target) != (actor, friend)]
            world.friend_applications.append(FriendApplication(actor, friend, action.wording, action.add_type))
            ctx.succeed(actor, "add", f"{friend}: awaiting approval ({AWAITS_APPROVAL})", friend=friend,
                        code=AWAITS_APPROVAL)
            ctx.emit(friend, "friend request", f"from {actor}" + (f": {action.wording!r}" if action.wording else ""),
                     requester=actor, wording=action.wording)
    if pairs:
        _add_pairs(ctx, actor, pairs, actor, "friend_add")


def _with_friends(action: AddFriend, friends: tuple[str, ...]) -> AddFriend:
    from dataclasses import replace

    return replace(action, friends=friends)


def _add_pairs(ctx: Context, actor: str, pairs: list[tuple[str, str]], initiator: str, client_cmd: str) -> None:
    """Put each (owner, friend) pair on the owner's list, raise the events, send Sns.CallbackFriendAdd."""
    added = [(owner, friend) for owner, friend in pairs if ctx.world.befriend(owner, friend)]
    for owner, friend in added:
        ctx.emit(owner, "friend added", friend, friend=friend)
    if added:
        ctx.post_after(actor, wire.friend_add(added, initiator, client_cmd, ctx.now_ms()))


def respond_friend_step(ctx: Context, action: RespondFriend) -> None:
    world, actor = ctx.world, action.actor
    application = next((a for a in reversed(world.friend_applications) if a.target == actor
                        and action.requester in (None, a.requester)), None)
    if application is None:
        who = f" from {action.requester}" if action.requester else ""
        raise StepError(f"{actor} has no pending friend request{who}")
    if not ctx.require_online(actor, "respond"):
        return
    requester = application.requester
    exchange = ctx.post(actor, wire.prev_friend_response(actor, requester, action.response, ctx.now_ms()))
    ruling = read_friend_reply(exchange, (requester,))
    if requester in ruling.friend_results:
        code, info = ruling.friend_results[requester]
        ctx.fail(actor, "respond", code, info, friend=requester)
        return
    world.friend_applications.remove(application)
    ctx.succeed(actor, "respond", f"{action.response} to {requester}")
    if action.response == "Response_Action_Reject":
        ctx.emit(requester, "friend request rejected", f"by {actor}", by=actor)
        return
    # Agree: the requester gets the responder as a friend; AgreeAndAdd: both ways.
    pairs = [(requester, actor)]
    if action.response == "Response_Action_AgreeAndAdd":
        pairs.append((actor, requester))
    _add_pairs(ctx, actor, pairs, requester, "friend_response")


def delete_friend_step(ctx: Context, action: DeleteFriend) -> None:
    world, actor, friend = ctx.world, action.actor, action.friend
    if friend not in world.users[actor].friends:
        raise StepError(f"{friend} is not on {actor}'s friend list")
    if not ctx.require_online(actor, "delete"):
        return
    # The SDK deletes both ways by default (Delete_Type_Both).
    pairs = [(actor, friend)] + ([(friend, actor)] if actor in world.users[friend].friends else [])
    for owner, other in pairs:
        world.users[owner].friends.discard(other)
        ctx.emit(owner, "friend deleted", other, friend=other)
    ctx.post_after(actor, wire.friend_delete(pairs, ctx.now_ms()))


def _state_platform(platform: str) -> str:
    # State.StateChange sends "IOS" in upper case (PROTOCOL.md §1).
    return "IOS" if platform.lower() == "ios" else platform


def login_step(ctx: Context, action: Login) -> None:
    user = ctx.world.users[action.actor]
    platform = action.platform or user.default_platform
    if ctx.settings.login_policy == "single":
        kicked = list(user.platforms)
    else:
        kicked = [p for p in user.platforms if p.lower() == platform.lower()]
    for device in kicked:
        ctx.emit(user.name, "kicked offline", f"on {device}: logged in elsewhere", platform=device)
    user.platforms = [p for p in user.platforms if p not in kicked] + [platform]
    ctx.succeed(user.name, "login", f"on {platform}")
    ctx.post_after(user.name, wire.state_change(user.name, "Login", "Register", kicked, ctx.now_ms()),
                   platform=_state_platform(platform))


def logout_step(ctx: Context, action: Logout) -> None:
    user = ctx.world.users[action.actor]
    if not user.online:
        raise StepError(f"{user.name} is not online")
    platform = user.platforms.pop()
    verb = "Disconnect" if action.reason == "LinkClose" else "Logout"
    ctx.note(f"{user.name} is off {platform}" + ("" if user.online else ": now offline"))
    ctx.post_after(user.name, wire.state_change(user.name, verb, action.reason, (), ctx.now_ms()),
                   platform=_state_platform(platform))
