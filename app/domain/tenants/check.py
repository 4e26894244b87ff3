"""The profile check: would Tavus accept what a profile sends, found out without cost.

A template is tried by creating a PAL from it and starting a ``test_mode`` conversation on
it (born ended: no slot, no billing), then deleting that PAL whatever happened. A
persistent PAL (``reuse``, ``auto``) is read and a test conversation started on it; it is
never deleted. Whatever Tavus answers is reported step by step, not raised: the check
exists to show an operator what Tavus says.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.tenants import TenantRepository
from app.domain.accounts import TavusAccounts
from app.domain.profiles.resolution import resolve
from app.domain.profiles.schemas import Profile
from app.domain.sessions import tags
from app.domain.sessions.schemas import SessionCreate
from app.domain.tenants import errors
from app.errors import UpstreamError
from app.security import pal_secrets
from app.security.secret_box import SecretBox
from app.tavus.client import TavusClient
from app.tavus.errors import TavusError, TavusNotFound, TavusUnreachable
from app.tavus.models import ConversationCreate, PalCreate

logger = logging.getLogger(__name__)

# The objects get names of their own: a PAL whose create answer was lost is found (and
# deleted) by it, and the "check" marker keeps them apart from session objects, which
# the orphan sweep attributes by their "(palisade <session id>)" suffix.
DEFAULT_CHECK_NAME: Final = "Palisade profile check"

StepName = Literal["create_pal", "create_test_conversation", "delete_pal", "get_pal"]


class CheckStep(BaseModel):
    step: StepName
    ok: bool
    tavus_status: int | None = Field(
        default=None,
        description="The HTTP status of Tavus's refusal; null on success or when no answer came.",
    )
    message: str | None = Field(
        default=None, description="Tavus's own message when it refused; else what went wrong."
    )
    id: str | None = Field(
        default=None, description="The PAL or conversation id the step created or used."
    )


class ProfileCheck(BaseModel):
    profile: str
    ok: bool = Field(description="True when every step succeeded.")
    steps: list[CheckStep]


@dataclass(frozen=True)
class CheckTarget:
    """What a check needs, read from the database before any Tavus call is made."""

    tenant_id: str
    profile_name: str
    profile: Profile
    # The tenant's own Tavus key, encrypted (None: the global account).
    tavus_key: bytes | None = field(default=None, repr=False)


async def load_target(
    session: AsyncSession, tenant_id: str, profile_name: str, *, box: SecretBox
) -> CheckTarget:
    """Read the profile and the tenant's Tavus key; raises ``TenantNotFound`` or
    ``ProfileNotFound``. Only reads, so the caller may close the session before the
    slow part."""
    repo = TenantRepository(session)
    tenant = await repo.get(tenant_id)
    if tenant is None:
        raise errors.TenantNotFound(f"tenant {tenant_id!r} does not exist")
    row = await repo.get_profile(tenant_id, profile_name)
    if row is None:
        raise errors.ProfileNotFound(
            f"tenant {tenant_id!r} has no profile {profile_name!r}", profile=profile_name
        )
    return CheckTarget(
        tenant_id=tenant_id,
        profile_name=profile_name,
        profile=Profile.model_validate(pal_secrets.unseal_profile(row.config, box)),
        tavus_key=tenant.tavus_api_key_encrypted,
    )


async def run_check(target: CheckTarget, *, accounts: TavusAccounts) -> ProfileCheck:
    """Try the profile on Tavus: its template (if any), then its persistent PAL (if used).

    Raises ``UpstreamError`` only when Tavus cannot be reached for the first step; every
    other outcome is a step of the report.
    """
    client = accounts.for_key(target.tavus_key)
    # The conversation a session without overrides would start, so the check sends the
    # profile's real defaults (face, timeouts, language, ...).
    conversation = resolve(
        target.profile, SessionCreate(), profile_name=target.profile_name
    ).conversation_body
    run = _Run(client, uuid.uuid4(), f"{target.tenant_id}/{target.profile_name}")
    if target.profile.pal_template is not None:
        await run.template(copy.deepcopy(target.profile.pal_template), conversation)
    if target.profile.strategy != "ephemeral" and target.profile.pal_id is not None:
        await run.persistent(target.profile.pal_id, conversation)
    return ProfileCheck(
        profile=target.profile_name,
        ok=bool(run.steps) and all(step.ok for step in run.steps),
        steps=run.steps,
    )


class _Run:
    def __init__(self, tavus: TavusClient, check_id: uuid.UUID, subject: str) -> None:
        self._tavus = tavus
        self._check_id = check_id
        self._subject = subject
        self.steps: list[CheckStep] = []

    async def template(self, template: dict[str, Any], conversation: dict[str, Any]) -> None:
        name = self._name(template.get("pal_name"))
        try:
            body = PalCreate.model_validate({**template, "pal_name": name})
        except ValidationError as exc:
            self._record("create_pal", False, message=f"Tavus would refuse it: {_describe(exc)}")
            return
        pal_id: str | None = None
        try:
            try:
                pal = await self._tavus.create_pal(body)
            except TavusError as error:
                self._failed("create_pal", error)
                if error.may_have_taken_effect:
                    pal_id = await self._find_pal(name)
                return
            pal_id = pal.pal_id
            self._record("create_pal", True, id=pal_id)
            await self._test_conversation(pal_id, conversation)
        finally:
            if pal_id is not None:
                # Shielded: a cancelled request must still not leave the PAL behind.
                await asyncio.shield(self._delete_pal(pal_id))

    async def persistent(self, pal_id: str, conversation: dict[str, Any]) -> None:
        try:
            pal = await self._tavus.get_pal(pal_id)
        except TavusError as error:
            self._failed("get_pal", error, id=pal_id)
            return
        self._record("get_pal", True, id=pal.pal_id)
        await self._test_conversation(pal_id, conversation)

    async def _test_conversation(self, pal_id: str, conversation: dict[str, Any]) -> None:
        step: StepName = "create_test_conversation"
        try:
            body = ConversationCreate.model_validate(
                {
                    **conversation,
                    "pal_id": pal_id,
                    "conversation_name": self._name(conversation.get("conversation_name")),
                    "test_mode": True,
                }
            )
        except ValidationError as exc:
            self._record(step, False, message=f"Tavus would refuse it: {_describe(exc)}")
            return
        try:
            created = await self._tavus.create_conversation(body)
        except TavusError as error:
            # Even an unknown outcome needs no clean-up: a test conversation is born ended.
            self._failed(step, error)
            return
        if not created.is_active:
            self._record(step, True, id=created.conversation_id)
            return
        # Tavus documents test_mode conversations as born ended; one that is not holds a
        # slot and bills until it ends, so it is ended here and the check fails.
        message = "Tavus started the test conversation as active instead of ended"
        try:
            await self._tavus.end_conversation(created.conversation_id)
        except TavusError as error:
            message += f"; ending it failed: {error.message}"
        else:
            message += "; it was ended"
        self._record(step, False, message=message, id=created.conversation_id)

    async def _find_pal(self, name: str) -> str | None:
        try:
            found = await self._tavus.find_pal_by_name(name)
        except TavusError as error:
            logger.error(
                "profile check %s: cannot tell whether Tavus created PAL %r: %s",
                self._subject,
                name,
                error,
            )
            self._record(
                "delete_pal",
                False,
                tavus_status=error.status,
                message=(
                    f"could not find out whether Tavus created the PAL ({error.message}); "
                    f"delete any PAL named {name!r}"
                ),
            )
            return None
        return found.pal_id if found is not None else None

    async def _delete_pal(self, pal_id: str) -> None:
        try:
            await self._tavus.delete_pal(pal_id)
        except TavusNotFound:
            # A retried delete whose first answer was lost finds the PAL already gone.
            self._record("delete_pal", True, message="already deleted", id=pal_id)
        except TavusError as error:
            logger.error(
                "profile check %s: PAL %s was not deleted: %s", self._subject, pal_id, error
            )
            self._record(
                "delete_pal",
                False,
                tavus_status=error.status,
                message=f"the PAL was not deleted, delete it by hand: {error.message}",
                id=pal_id,
            )
        else:
            self._record("delete_pal", True, id=pal_id)

    def _failed(self, step: StepName, error: TavusError, *, id: str | None = None) -> None:
        if isinstance(error, TavusUnreachable) and not self.steps:
            # Nothing was sent and nothing was learnt: there is no report to give.
            raise UpstreamError(f"Tavus is unreachable: {error.message}", step=step) from None
        self._record(step, False, tavus_status=error.status, message=error.message, id=id)

    def _record(
        self,
        step: StepName,
        ok: bool,
        *,
        tavus_status: int | None = None,
        message: str | None = None,
        id: str | None = None,
    ) -> None:
        self.steps.append(
            CheckStep(step=step, ok=ok, tavus_status=tavus_status, message=message, id=id)
        )

    def _name(self, base: object) -> str:
        return tags.check_pal_name(
            base if isinstance(base, str) else None, self._check_id, DEFAULT_CHECK_NAME
        )


def _describe(exc: ValidationError) -> str:
    # Locations and messages only: a template may hold provider API keys.
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '<body>'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )
