"""The PAL existence check that profile validation asks of Tavus."""

from __future__ import annotations

from app.errors import UpstreamError
from app.tavus.client import TavusClient
from app.tavus.errors import TavusError, TavusNotFound


class TavusPalDirectory:
    def __init__(self, tavus: TavusClient) -> None:
        self._tavus = tavus

    async def pal_exists(self, pal_id: str, *, api_key: str | None) -> bool:
        client = self._tavus.with_api_key(api_key) if api_key else self._tavus
        try:
            await client.get_pal(pal_id)
        except TavusNotFound:
            return False
        except TavusError as exc:
            raise UpstreamError(
                f"could not verify PAL {pal_id!r} on Tavus: {exc.message}",
                tavus_status=exc.status,
            ) from exc
        return True
