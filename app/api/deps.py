"""Request dependencies. The database session here is the request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async although it awaits nothing: FastAPI runs a plain ``def`` dependency in its
    # thread pool, a thread hop on every request for one attribute read.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_db_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Commit when the handler returns, roll back when it raises; services never commit.

    Scoped to the function so the commit happens before the response is sent: a client
    never sees a success that was not durably stored.
    """
    async with runtime.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
