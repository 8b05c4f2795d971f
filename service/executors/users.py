"""create_user, update_user, suspend_user, reactivate_user, assign_licence, revoke_licence.

Users are keyed by (tenant, employee id); their natural key is the e-mail. Licences are
assigned from the tenant's subscription for the app (the latest one mapped). "Already
assigned" and "not assigned" answers mean the API is already where we want it.
"""

from __future__ import annotations

from connectors.ucaas import (
    AlreadyAssignedError,
    AlreadyExistsError,
    NotAssignedError,
    NotFoundError,
)
from connectors.ucaas.models.users import NewUser, User, UserChanges
from service.domain.commands import (
    AssignLicence,
    ChangeEmail,
    CreateUser,
    ReactivateUser,
    RevokeLicence,
    SuspendUser,
    UpdateUser,
    UserPayload,
)
from service.executors.base import Exec, TenantAccess
from service.executors.registry import executes
from service.outbox.mappings import IdMappingView
from service.outbox.outcomes import Dead, Done, MappingKey, MappingWrite, Outcome, WaitForError


def _key(p: UserPayload) -> MappingKey:
    return MappingKey("user", p.tenant, p.employee_id)


def _user_mapping(
    p: UserPayload, user_id: str, email: str, state: dict[str, object]
) -> MappingWrite:
    return MappingWrite(_key(p), user_id, email.lower(), state)


async def _find(access: TenantAccess, email: str) -> User | None:
    found = await access.api.users.find_by_email(email)
    # Acting for the tenant as the platform admin sees every customer's users: keep to ours.
    if (
        found is not None
        and access.acting_admin
        and found.customer_id not in (None, access.customer_id)
    ):
        return None
    return found


@executes(CreateUser)
async def create_user(x: Exec, p: CreateUser) -> Outcome:
    if await _mapping(x, p, fresh=True):
        return Done(note="already mapped")
    if p.rehire_of is not None:
        leaver = await x.mapping("user", p.tenant, p.rehire_of, fresh=True)
        if leaver is not None:  # the person's own user, under their new employee id
            mapping = MappingWrite(_key(p), leaver.ucaas_id, leaver.natural_key, leaver.state)
            return Done(mappings=(mapping,), note=f"rehire: {p.rehire_of}'s user adopted")
    access = await x.tenant(p.tenant)
    state = p.profile.model_dump(mode="json", exclude_none=True) | {"status": "A"}
    existing = await _find(access, p.profile.email) if x.lookup_first else None
    if existing is None:
        profile = p.profile
        new = NewUser(
            user_type="AP",
            first_name=profile.first_name,
            middle_name=profile.middle_name,
            last_name=profile.last_name,
            email=profile.email,
            department=profile.department,
            designation=profile.designation,
            customer_id=access.customer_id if access.acting_admin else None,
        )
        try:
            saved = await access.api.users.add(new)
        except AlreadyExistsError as exc:
            existing = await _find(access, p.profile.email)
            if existing is None:
                await x.recheck()  # "another customer" may be our replaced one
                return Dead(str(exc.code), f"{exc.api_message} (in another customer)")
        else:
            return Done(mappings=(_user_mapping(p, saved.user.user_id, p.profile.email, state),))
    note = "adopted the existing user"
    if existing.status not in (None, "A"):
        # a user made for this person is active: a suspended one with their e-mail is a
        # leaver's (a rehire under a new id heard before the leaving), taken back
        await access.api.users.edit(existing.user_id, UserChanges(status="A"))
        note = "adopted the existing user, reactivated"
    return Done(
        mappings=(_user_mapping(p, existing.user_id, p.profile.email, state),),
        note=note,
    )


async def _mapping(x: Exec, p: UserPayload, *, fresh: bool = False) -> IdMappingView | None:
    return await x.mapping("user", p.tenant, p.employee_id, fresh=fresh)


async def _user_id(x: Exec, p: UserPayload) -> str | None:
    mapping = await _mapping(x, p)
    return mapping.ucaas_id if mapping else None


@executes(UpdateUser)
async def update_user(x: Exec, p: UpdateUser) -> Outcome:
    access = await x.tenant(p.tenant)
    mapping = await _mapping(x, p)
    user_id = mapping.ucaas_id if mapping else None
    if user_id is None:
        found = await _find(access, p.email)
        if found is None:
            raise WaitForError(f"user {p.email} is not created yet")
        user_id = found.user_id
    changes = UserChanges.model_validate(p.changes)
    try:
        await access.api.users.edit(user_id, changes)
    except NotFoundError:
        await x.recheck()
        found = await _find(access, p.email)
        if found is None:
            return Dead("404", f"user {p.email} no longer exists in UCaaS")
        user_id = found.user_id
        await access.api.users.edit(user_id, changes)
    state = {**(mapping.state if mapping else {}), **p.changes}
    return Done(mappings=(_user_mapping(p, user_id, p.email, state),))


async def _set_status(x: Exec, p: UserPayload, status: str) -> Outcome:
    mapping = await _mapping(x, p)
    if mapping is None:
        return Done(note="no such user: nothing to change")
    access = await x.tenant(p.tenant)
    try:
        await access.api.users.edit(mapping.ucaas_id, UserChanges(status=status))
    except NotFoundError:
        await x.recheck()
        return Done(note="user gone from UCaaS")
    state = {**mapping.state, "status": status}
    return Done(mappings=(MappingWrite(mapping.key, mapping.ucaas_id, mapping.natural_key, state),))


@executes(ChangeEmail)
async def change_email(x: Exec, p: ChangeEmail) -> Outcome:
    """Approved by a person who changed the e-mail in UCaaS by hand: record it if UCaaS
    has it now, else say what is still to do."""
    mapping = await _mapping(x, p)
    if mapping is None:
        return Done(note="no such user: no e-mail to change")
    access = await x.tenant(p.tenant)
    try:
        user = await access.api.users.get(mapping.ucaas_id)
    except NotFoundError:
        await x.recheck()
        return Done(note="user gone from UCaaS")
    if (user.email or "").lower() != p.new_email.lower():
        return Dead(
            "email",
            f"UCaaS still has {user.email}: the API cannot change an e-mail; change it to "
            f"{p.new_email} in UCaaS by hand, then retry this command (or drop it)",
        )
    state = {**mapping.state, "email": p.new_email}
    return Done(mappings=(MappingWrite(mapping.key, mapping.ucaas_id, p.new_email, state),))


@executes(SuspendUser)
async def suspend_user(x: Exec, p: SuspendUser) -> Outcome:
    return await _set_status(x, p, "S")


@executes(ReactivateUser)
async def reactivate_user(x: Exec, p: ReactivateUser) -> Outcome:
    return await _set_status(x, p, "A")


def _licence_key(p: AssignLicence | RevokeLicence) -> MappingKey:
    return MappingKey("licence", p.tenant, f"{p.employee_id}:{p.app}")


@executes(AssignLicence)
async def assign_licence(x: Exec, p: AssignLicence) -> Outcome:
    user_id = await _user_id(x, p)
    if user_id is None:
        return Done(note="no such user: no licence to assign")
    subscription = await x.store.mapping_by_natural("subscription", p.tenant, p.app)
    if subscription is None:
        raise WaitForError(f"tenant {p.tenant} has no {p.app} subscription yet")
    access = await x.tenant(p.tenant)
    note = None
    try:
        await access.api.users.assign_licence(
            user_id, app=p.app, subscription_id=subscription.ucaas_id
        )
    except AlreadyAssignedError:
        note = "already assigned"
    mapping = MappingWrite(_licence_key(p), subscription.ucaas_id, p.app, {"app": p.app})
    return Done(mappings=(mapping,), note=note)


@executes(RevokeLicence)
async def revoke_licence(x: Exec, p: RevokeLicence) -> Outcome:
    user_id = await _user_id(x, p)
    if user_id is None:
        return Done(note="no such user: no licence to revoke")
    access = await x.tenant(p.tenant)
    note = None
    try:
        await access.api.users.revoke_licence(user_id, p.app)
    except NotAssignedError:
        note = "not assigned"
    except NotFoundError:
        await x.recheck()
        note = "user gone from UCaaS"
    return Done(forget=(_licence_key(p),), note=note)
