"""What a profile's warm pool holds: its keys, each a PAL body resolved like a session's.

A pool key is one exact PAL body: the template as is (``ephemeral`` profiles) or the
template merged with one declared variant's overrides. The body comes from
:func:`~app.domain.profiles.resolution.resolve`, the code every session goes through,
given a request carrying nothing but those overrides, so the pooled PAL is bit for bit
the PAL such a session would have created (but for the name tag). Conversation fields
play no part: they go on the conversation, which a start always creates itself.

Variants are checked at save time (:func:`warm_pool_problems`, called by
:func:`~app.domain.profiles.schemas.validate_profile`): each must resolve as a session's
request would, to an ephemeral PAL, and no two keys may hold the same body.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from app.domain.pool.fingerprint import pal_body_fingerprint
from app.domain.profiles import errors
from app.domain.profiles.resolution import resolve
from app.domain.profiles.schemas import Profile
from app.domain.sessions import tags
from app.domain.sessions.schemas import SessionCreate
from app.errors import AppError

# Any id will do: the fingerprint ignores the tag, but not the base name it is joined to.
_PLACEHOLDER_ID: Final = uuid.UUID(int=0)


@dataclass(frozen=True)
class PoolKey:
    """One body the pool keeps ready, and how many PALs of it."""

    #: The variant's name; None for the template itself.
    variant: str | None
    size: int
    #: The resolved ``POST /v2/pals`` body, without a name tag.
    pal_body: Mapping[str, Any]
    fingerprint: str

    def body_for(self, pool_id: uuid.UUID) -> dict[str, Any]:
        """The body to send for the pool row ``pool_id``: tagged with the pool's tag."""
        return {**self.pal_body, "pal_name": tags.pool_pal_name(self._base(), pool_id)}

    def pal_name(self, pool_id: uuid.UUID) -> str:
        return tags.pool_pal_name(self._base(), pool_id)

    def _base(self) -> str | None:
        name = self.pal_body.get("pal_name")
        return name if isinstance(name, str) else None


@dataclass(frozen=True)
class PoolPlan:
    keys: tuple[PoolKey, ...]
    #: Variants that cannot be pooled, as ``{"loc", "code", "msg"}`` under the profile.
    problems: tuple[errors.Problem, ...]


def _key(
    profile: Profile, profile_name: str, variant: str | None, overrides: Any, size: int
) -> PoolKey:
    request = SessionCreate.model_validate({"overrides": overrides})
    resolution = resolve(profile, request, profile_name=profile_name)
    if resolution.pal_body is None:
        raise _NotEphemeral
    probe = PoolKey(variant, size, resolution.pal_body, "")
    fingerprint = pal_body_fingerprint(probe.body_for(_PLACEHOLDER_ID))
    return PoolKey(variant, size, resolution.pal_body, fingerprint)


class _NotEphemeral(Exception):
    pass


def plan_pool(profile: Profile, profile_name: str) -> PoolPlan:
    """The pool keys of ``profile`` (empty without a pool, or under ``reuse``), and the
    variants that cannot be pooled."""
    pool = profile.warm_pool
    if pool is None or profile.strategy == "reuse":
        return PoolPlan((), ())
    keys: list[PoolKey] = []
    problems: list[errors.Problem] = []
    seen: dict[str, str] = {}
    if profile.strategy == "ephemeral":
        template = _key(profile, profile_name, None, {}, pool.size)
        keys.append(template)
        seen[template.fingerprint] = "the template"
    names: set[str] = set()
    for index, variant in enumerate(pool.variants):
        where: list[str | int] = ["warm_pool", "variants", index]
        if variant.name in names:
            problems.append(
                errors.Problem(
                    loc=[*where, "name"],
                    code=errors.WARM_POOL_VARIANT_DUPLICATE,
                    msg=f"variant name {variant.name!r} is used twice",
                )
            )
            continue
        names.add(variant.name)
        try:
            size = pool.size if variant.size is None else variant.size
            key = _key(profile, profile_name, variant.name, variant.overrides, size)
        except _NotEphemeral:
            problems.append(
                errors.Problem(
                    loc=[*where, "overrides"],
                    code=errors.WARM_POOL_VARIANT_INVALID,
                    msg="under strategy 'auto' a variant needs overrides: without any, a "
                    "session reuses pal_id",
                )
            )
            continue
        except ValidationError as exc:
            problems.extend(errors.validation_problems(exc, loc_prefix=where))
            continue
        except AppError as error:
            problems.append(
                errors.Problem(
                    loc=[*where, "overrides"],
                    code=errors.WARM_POOL_VARIANT_INVALID,
                    msg=f"a session sending these overrides would be refused: "
                    f"{error.code}: {error.detail}",
                )
            )
            continue
        if key.fingerprint in seen:
            problems.append(
                errors.Problem(
                    loc=[*where, "overrides"],
                    code=errors.WARM_POOL_VARIANT_DUPLICATE,
                    msg=f"gives the same PAL body as {seen[key.fingerprint]}",
                )
            )
            continue
        seen[key.fingerprint] = f"variant {variant.name!r}"
        keys.append(key)
    return PoolPlan(tuple(keys), tuple(problems))


def warm_pool_problems(profile: Profile, profile_name: str) -> list[errors.Problem]:
    """Save-time check of the pool's variants (empty when they are all poolable)."""
    return list(plan_pool(profile, profile_name).problems)
