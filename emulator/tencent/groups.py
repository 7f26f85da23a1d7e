"""Group steps: create, apply to join (and review), invite, leave, kick."""

from __future__ import annotations

from ..context import Context, StepError
from ..steps import ApplyJoin, CreateGroup, InviteMembers, KickMembers, LeaveGroup, ReviewApplication
from ..world import DEFAULT_JOIN, GroupState, JoinApplication
from . import wire
from .messages import NO_PERMISSION
from .transport import REFUSE, read_decide_reply

# Tencent error codes (from the IM's error-code table, not from PROTOCOL.md).
ALREADY_MEMBER = 10013
OWNER_CANNOT_QUIT = 10009


def _tell_members(ctx: Context, group: GroupState, kind: str, summary: str, **detail) -> None:
    for member in group.members:
        ctx.emit(member, kind, f"{group.alias}: {summary}", group=group.alias, **detail)


def create_group_step(ctx: Context, action: CreateGroup) -> None:
    world, actor = ctx.world, action.actor
    if not ctx.require_online(actor, "create"):
        return
    members = tuple(dict.fromkeys(m for m in action.members if m != actor))
    created = world.groups_created(actor, action.group_type)
    before = wire.before_create_group(action, created, ctx.now_ms())
    ruling = read_decide_reply(ctx.post(actor, before))
    if ruling.outcome == REFUSE:
        ctx.fail(actor, "create", ruling.code, ruling.info)
        return
    group = world.add_group(GroupState(
        action.alias, world.ids.group_id(action.group_type), action.name, action.group_type, actor,
        members=[actor, *members], join=DEFAULT_JOIN.get(action.group_type, "approve")))
    ctx.succeed(actor, "create", f"{group.alias} ({group.group_id})")
    ctx.emit(actor, "group created", f"{group.alias} ({group.type})", group=group.alias)
    for member in members:
        ctx.emit(member, "member invited", f"{group.alias}: {member} by {actor}", group=group.alias,
                 members=(member,), by=actor)
    ctx.post_after(actor, wire.after_create_group(group, members, ctx.now_ms()))


def apply_join_step(ctx: Context, action: ApplyJoin) -> None:
    world, actor = ctx.world, action.actor
    group = world.groups[action.group]
    if not ctx.require_online(actor, "join"):
        return
    if actor in group.members:
        ctx.fail(actor, "join", ALREADY_MEMBER, "already a group member")
        return
    if group.join == "disabled":
        # Checked before any callback (assumed: the IM applies the group's own settings first).
        ctx.fail(actor, "join", NO_PERMISSION, f"{group.type} groups take no applications")
        return
    ruling = read_decide_reply(ctx.post(actor, wire.before_apply_join(group, actor, ctx.now_ms())))
    if ruling.outcome == REFUSE:
        ctx.fail(actor, "join", ruling.code, ruling.info)
        return
    if group.join == "free":
        ctx.succeed(actor, "join", group.alias)
        _admit(ctx, group, [actor], "Apply", actor)
        return
    world.join_applications.append(JoinApplication(actor, group.alias))
    ctx.succeed(actor, "join", f"{group.alias}: awaiting approval")
    for reviewer in [group.owner, *sorted(group.admins)]:
        ctx.emit(reviewer, "join application", f"{group.alias}: from {actor}", group=group.alias, applicant=actor)


def _admit(ctx: Context, group: GroupState, newcomers: list[str], join_type: str, operator: str) -> None:
    group.members.extend(newcomers)
    kind = "member entered" if join_type == "Apply" else "member invited"
    _tell_members(ctx, group, kind, ", ".join(newcomers) + (f" by {operator}" if join_type != "Apply" else ""),
                  members=tuple(newcomers), by=operator)
    ctx.post_after(operator, wire.after_new_member_join(group, join_type, operator, newcomers, ctx.now_ms()))


def review_step(ctx: Context, action: ReviewApplication) -> None:
    world, actor = ctx.world, action.actor
    application = next((a for a in reversed(world.join_applications) if a.applicant == action.applicant
                        and action.group in (None, a.group) and world.groups[a.group].can_review(actor)), None)
    if application is None:
        raise StepError(f"{actor} has no application from {action.applicant} to review")
    if not ctx.require_online(actor, "approve" if action.approve else "decline"):
        return
    world.join_applications.remove(application)
    group = world.groups[application.group]
    if not action.approve:
        ctx.succeed(actor, "decline", f"{action.applicant} for {group.alias}")
        ctx.emit(action.applicant, "join declined", f"{group.alias}: by {actor}", group=group.alias, by=actor)
        return
    ctx.succeed(actor, "approve", f"{action.applicant} for {group.alias}")
    _admit(ctx, group, [action.applicant], "Apply", actor)


def invite_step(ctx: Context, action: InviteMembers) -> None:
    world, actor = ctx.world, action.actor
    group = world.groups[action.group]
    if not ctx.require_online(actor, "invite"):
        return
    if actor not in group.members:
        ctx.fail(actor, "invite", NO_PERMISSION, "not a group member")
        return
    invitees = tuple(u for u in dict.fromkeys(action.invitees) if u not in group.members)
    if len(invitees) < len(set(action.invitees)):
        ctx.note("already members, not invited: " + ", ".join(u for u in action.invitees if u in group.members))
    if not invitees:
        return
    before = wire.before_invite_join(group, actor, invitees, ctx.now_ms())
    ruling = read_decide_reply(ctx.post(actor, before), invitees)
    if ruling.outcome == REFUSE:
        ctx.fail(actor, "invite", ruling.code, ruling.info)
        return
    admitted = [u for u in invitees if u not in ruling.refused_members]
    refused = f"; refused: {', '.join(ruling.refused_members)}" if ruling.refused_members else ""
    ctx.succeed(actor, "invite", f"{', '.join(admitted) or 'nobody'} to {group.alias}{refused}",
                refused=ruling.refused_members)
    if admitted:
        _admit(ctx, group, admitted, "Invited", actor)


def leave_step(ctx: Context, action: LeaveGroup) -> None:
    group = ctx.world.groups[action.group]
    if action.actor not in group.members:
        raise StepError(f"{action.actor} is not in {group.alias}")
    if not ctx.require_online(action.actor, "leave"):
        return
    if action.actor == group.owner and group.type not in ("Private", "Work"):
        ctx.fail(action.actor, "leave", OWNER_CANNOT_QUIT, "the owner cannot leave this group type")
        return
    _remove(ctx, group, [action.actor], "Quit", action.actor)


def kick_step(ctx: Context, action: KickMembers) -> None:
    group = ctx.world.groups[action.group]
    if not ctx.require_online(action.actor, "kick"):
        return
    if not group.can_review(action.actor):
        ctx.fail(action.actor, "kick", NO_PERMISSION, "only the owner or an admin may kick")
        return
    members = [m for m in dict.fromkeys(action.members) if m in group.members and m != action.actor]
    if not members:
        raise StepError(f"none of {', '.join(action.members)} can be kicked from {group.alias}")
    _remove(ctx, group, members, "Kicked", action.actor)


def _remove(ctx: Context, group: GroupState, leaving: list[str], exit_type: str, operator: str) -> None:
    kind = "member left" if exit_type == "Quit" else "member kicked"
    ctx.succeed(operator, "leave" if exit_type == "Quit" else "kick", f"{', '.join(leaving)} from {group.alias}")
    _tell_members(ctx, group, kind, ", ".join(leaving), members=tuple(leaving), by=operator)
    group.members = [m for m in group.members if m not in leaving]
    group.admins -= set(leaving)
    ctx.post_after(operator, wire.after_member_exit(group, exit_type, operator, leaving, ctx.now_ms()))
