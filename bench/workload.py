"""What one start is, for each strategy: the ``POST /sessions`` a client sends, and the
Tavus calls Palisade makes for it, captured from Palisade itself so that the direct
baseline sends the same bodies to the same simulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bench.loadgen import ID, PAL_ID, Call, Start
from bench.stack import PROFILE_NAMES, Stack

PROFILES = ("reuse", "ephemeral", "auto")
# Its own simulator account: nothing in Palisade's account is not Palisade's.
DIRECT_TAVUS_KEY = "bench-direct-account"
_CONTEXT = "The user is Ana; this is her first session."
_VOICE_OVERRIDE = {"layers": {"tts": {"external_voice_id": "voice-bright"}}}


@dataclass(frozen=True)
class Workload:
    """The starts of one profile: through Palisade, and as direct Tavus calls, variant
    by variant."""

    profile: str
    palisade: tuple[Start, ...]
    direct: tuple[Start, ...]


def session_bodies(profile: str) -> list[dict[str, Any]]:
    """``POST /sessions`` bodies of a profile. Auto alternates between a start with only
    per-session data (it resolves to reuse) and one with an override (to ephemeral)."""
    data_only: dict[str, Any] = {
        "profile": PROFILE_NAMES[profile],
        "external_ref": f"user-{ID}",
        "conversational_context": _CONTEXT,
    }
    with_override = {**data_only, "overrides": _VOICE_OVERRIDE}
    return {
        "reuse": [data_only],
        "ephemeral": [with_override],
        "auto": [with_override, data_only],
    }[profile]


def palisade_start(api_key: str, body: dict[str, Any]) -> Start:
    headers = (
        ("Authorization", f"Bearer {api_key}"),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", f"bench-{ID}"),
    )
    return (Call("POST", "/sessions", headers, json.dumps(body)),)


def capture(stack: Stack) -> dict[str, Workload]:
    """Start one session of each variant through Palisade, and keep as templates the
    bodies Palisade sent to the simulator for it."""
    with httpx.Client(timeout=30) as http:
        persistent = _pal_request(http, stack, stack.persistent_pal_id)
        # The direct account's own copy of the persistent PAL.
        copy = http.post(
            f"{stack.simulator_url}/v2/pals",
            headers={"x-api-key": DIRECT_TAVUS_KEY},
            json=persistent,
        )
        copy.raise_for_status()
        direct_pal_id = copy.json()["pal_id"]
        workloads = {}
        for profile in PROFILES:
            starts = [palisade_start(stack.api_key, body) for body in session_bodies(profile)]
            direct = [_direct_start(http, stack, start, direct_pal_id) for start in starts]
            workloads[profile] = Workload(profile, tuple(starts), tuple(direct))
    stack.retire_live_sessions()
    return workloads


def _pal_request(http: httpx.Client, stack: Stack, pal_id: str) -> dict[str, Any]:
    state = http.get(f"{stack.simulator_url}/_sim/state").json()
    request: dict[str, Any] = next(p for p in state["pals"] if p["pal_id"] == pal_id)["request"]
    return request


def _direct_start(http: httpx.Client, stack: Stack, start: Start, direct_pal_id: str) -> Start:
    session = start_sessions([stack.palisade_urls[0]], start, 1)[0]
    state = http.get(f"{stack.simulator_url}/_sim/state").json()
    conversation = next(
        c for c in state["conversations"] if c["conversation_id"] == session["conversation_id"]
    )
    headers = (("x-api-key", DIRECT_TAVUS_KEY), ("Content-Type", "application/json"))
    body = _templated(conversation["request"], session["id"])
    calls = []
    if session["pal_ephemeral"]:
        pal = _templated(_pal_request(http, stack, session["pal_id"]), session["id"])
        calls.append(Call("POST", "/v2/pals", headers, json.dumps(pal), takes_pal_id=True))
        body["pal_id"] = PAL_ID
    else:
        body["pal_id"] = direct_pal_id
    calls.append(Call("POST", "/v2/conversations", headers, json.dumps(body)))
    return tuple(calls)


def _templated(body: dict[str, Any], session_id: str) -> dict[str, Any]:
    # The same sizes as Palisade's bodies, with a tag no Palisade sweep would claim.
    raw = json.dumps(body).replace(session_id, ID).replace("(palisade ", "(direct ")
    templated: dict[str, Any] = json.loads(raw)
    return templated


def start_sessions(
    urls: list[str], start: Start, count: int, *, concurrency: int = 10
) -> list[dict[str, Any]]:
    """Set-up, not measured: ``count`` sessions through Palisade (its processes in
    turn); their ``POST /sessions`` answers."""
    (call,) = start

    async def run() -> list[dict[str, Any]]:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=60) as http:

            async def one(index: int) -> dict[str, Any]:
                headers, content = call.render(str(uuid.uuid4()))
                async with limit:
                    answer = await http.request(
                        call.method,
                        urls[index % len(urls)] + call.path,
                        headers=headers,
                        content=content,
                    )
                if answer.status_code != 201:
                    raise RuntimeError(f"start failed: {answer.status_code} {answer.text}")
                session: dict[str, Any] = answer.json()
                return session

            return list(await asyncio.gather(*(one(i) for i in range(count))))

    return asyncio.run(run())


def callback_urls(stack: Stack, conversation_ids: list[str]) -> list[str]:
    """The webhook URL Palisade gave Tavus for each conversation, read back from Tavus."""

    async def run() -> list[str]:
        limit = asyncio.Semaphore(20)
        headers = {"x-api-key": stack.tavus_api_key}
        async with httpx.AsyncClient(base_url=stack.simulator_url, timeout=60) as http:

            async def one(conversation_id: str) -> str:
                async with limit:
                    answer = await http.get(f"/v2/conversations/{conversation_id}", headers=headers)
                answer.raise_for_status()
                url: str = answer.json()["callback_url"]
                return url

            return list(await asyncio.gather(*(one(c) for c in conversation_ids)))

    return asyncio.run(run())
