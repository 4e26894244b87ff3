"""The console's pages and its two actions. Thin: read a page through
``app.console.services``, render it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from app.api.deps import DbSession, RuntimeDep
from app.console import services
from app.console.auth import (
    CSRF_FIELD,
    PREFIX,
    CheckedForm,
    Operator,
    clear_session_cookie,
    current_session,
    safe_next,
    set_session_cookie,
)
from app.console.deliveries import DeliveryLedger, delivery_ledger
from app.console.forms import read_form
from app.console.rendering import ConsoleRoute, render
from app.domain.sessions.errors import SessionNotEndable
from app.domain.storable_text import StorableStr
from app.errors import NotFound
from app.runtime import Runtime
from app.security.console_sessions import ConsoleSession
from app.security.tokens import constant_time_equals

logger = logging.getLogger(__name__)

router = APIRouter(route_class=ConsoleRoute, prefix=PREFIX, include_in_schema=False)

Deliveries = Annotated[DeliveryLedger, Depends(delivery_ledger)]

# What a redirect after an action may ask the next page to say (nothing else is echoed).
NOTICES: Final = {
    "end-requested": "The end was asked for: Tavus is ending the conversation. The session "
    "shows ended once Tavus confirms it.",
    "not-endable": "The session is still being created; end it once it is active.",
    "signed-out": "Signed out.",
    "retry-requested": "The delivery is queued to be sent again.",
}
_BAD_TOKEN: Final = "That is not the admin token."
_FORM_EXPIRED: Final = "The sign-in form had expired. Sign in again."


def _notice(key: str | None) -> str | None:
    return NOTICES.get(key or "")


def _now() -> datetime:
    return datetime.now(UTC)


def _page(
    request: Request,
    runtime: Runtime,
    session: ConsoleSession,
    template: str,
    page: str,
    notice: str | None = None,
    **context: object,
) -> Response:
    return render(
        request,
        template,
        {"page": page, "notice": _notice(notice), **context},
        session=session,
        csrf_token=runtime.console_sessions.csrf_token(session),
    )


# --- signing in and out ----------------------------------------------------------------------


def _sign_in_form(
    request: Request,
    runtime: Runtime,
    then: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    renew: bool = False,
) -> Response:
    """The sign-in page, with a session of its own to carry the form's CSRF token
    (the visitor's, unless ``renew``)."""
    sessions = runtime.console_sessions
    session = None if renew else current_session(request, sessions)
    fresh = None
    if session is None or session.signed_in:
        session, fresh = sessions.new(signed_in=False)
    response = render(
        request,
        "login.html",
        {"next": then, "error": error, "notice": notice, "page": "login"},
        session=None,
        csrf_token=sessions.csrf_token(session),
        status_code=status_code,
    )
    if fresh is not None:
        set_session_cookie(response, request, sessions, fresh)
    return response


@router.get("/login")
async def sign_in_page(
    request: Request,
    runtime: RuntimeDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    notice: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    then = safe_next(next)
    session = current_session(request, runtime.console_sessions)
    if session is not None and session.signed_in:
        return RedirectResponse(then, status_code=303)
    return _sign_in_form(request, runtime, then, notice=_notice(notice))


@router.post("/login")
async def sign_in(request: Request, runtime: RuntimeDep) -> Response:
    sessions = runtime.console_sessions
    form = await read_form(request)
    then = safe_next(form.get("next"))
    visitor = current_session(request, sessions)
    if visitor is None or not sessions.csrf_matches(visitor, form.get(CSRF_FIELD)):
        # No form of ours was submitted, or it outlived its session: a new form.
        return _sign_in_form(
            request, runtime, then, error=_FORM_EXPIRED, status_code=403, renew=True
        )
    if not constant_time_equals(form.get("token", ""), runtime.settings.admin_token_value):
        logger.warning("console sign-in refused: not the admin token")
        return _sign_in_form(request, runtime, then, error=_BAD_TOKEN, status_code=401)
    # A new session, so that nothing known before signing in is valid after it.
    _, cookie = sessions.new(signed_in=True)
    response = RedirectResponse(then, status_code=303)
    set_session_cookie(response, request, sessions, cookie)
    return response


@router.post("/logout")
async def sign_out(request: Request, _: CheckedForm) -> Response:
    response = RedirectResponse(f"{PREFIX}/login?notice=signed-out", status_code=303)
    clear_session_cookie(response, request)
    return response


# --- pages -----------------------------------------------------------------------------------


@router.get("")
async def overview_page(
    request: Request,
    session: Operator,
    runtime: RuntimeDep,
    db: DbSession,
    deliveries: Deliveries,
) -> Response:
    overview = await services.overview(db, runtime, deliveries, _now())
    return _page(request, runtime, session, "overview.html", "overview", overview=overview)


@router.get("/sessions")
async def sessions_page(
    request: Request,
    session: Operator,
    runtime: RuntimeDep,
    db: DbSession,
    filters: Annotated[services.SessionFilters, Query()],
) -> Response:
    listing = await services.sessions_page(db, filters)
    next_url = (
        f"{PREFIX}/sessions?{urlencode(filters.query(cursor=listing.next_cursor))}"
        if listing.next_cursor
        else None
    )
    first_url = f"{PREFIX}/sessions?{urlencode(filters.query(cursor=None))}"
    return _page(
        request,
        runtime,
        session,
        "sessions.html",
        "sessions",
        listing=listing,
        next_url=next_url,
        first_url=first_url if filters.cursor else None,
        per_page=services.SESSIONS_PER_PAGE,
        now=_now(),
    )


@router.get("/sessions/{session_id}")
async def session_page(
    request: Request,
    session_id: str,
    session: Operator,
    runtime: RuntimeDep,
    db: DbSession,
    after: Annotated[str | None, Query(max_length=200)] = None,
    notice: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    detail = await services.session_detail(db, session_id, after)
    later = detail.next_events_cursor
    return _page(
        request,
        runtime,
        session,
        "session.html",
        "sessions",
        notice,
        detail=detail,
        events_next_url=(
            f"{services.session_link(detail.row.id)}?{urlencode({'after': later})}"
            if later
            else None
        ),
        now=_now(),
    )


@router.post("/sessions/{session_id}/end")
async def end_session(session_id: str, _: CheckedForm, runtime: RuntimeDep) -> Response:
    try:
        await services.end_session(runtime, session_id)
    except SessionNotEndable:
        notice = "not-endable"
    else:
        notice = "end-requested"
    return RedirectResponse(f"{services.session_link(session_id)}?notice={notice}", status_code=303)


@router.get("/cleanup")
async def cleanup_page(
    request: Request, session: Operator, runtime: RuntimeDep, db: DbSession
) -> Response:
    cleanup = await services.cleanup_page(db, runtime, _now())
    return _page(request, runtime, session, "cleanup.html", "cleanup", cleanup=cleanup)


@router.get("/deliveries")
async def deliveries_page(
    request: Request,
    session: Operator,
    runtime: RuntimeDep,
    db: DbSession,
    deliveries: Deliveries,
    tenant: Annotated[StorableStr | None, Query(max_length=64)] = None,
    status: Annotated[StorableStr | None, Query(max_length=16)] = None,
    cursor: Annotated[StorableStr | None, Query(max_length=200)] = None,
    notice: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    page = await deliveries.page(
        db, tenant_id=tenant or None, status=status or None, limit=50, cursor=cursor or None
    )
    return _page(
        request,
        runtime,
        session,
        "deliveries.html",
        "deliveries",
        notice,
        recorded=deliveries.recorded,
        deliveries=page,
        now=_now(),
    )


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(
    delivery_id: str, _: CheckedForm, runtime: RuntimeDep, deliveries: Deliveries
) -> Response:
    await deliveries.retry(runtime, delivery_id)
    return RedirectResponse(f"{PREFIX}/deliveries?notice=retry-requested", status_code=303)


@router.get("/{anything:path}")
async def unknown_page(anything: str, _: Operator) -> Response:
    raise NotFound(f"the console has no page {PREFIX}/{anything}")
