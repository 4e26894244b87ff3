"""The run's tenants, created over the admin API like an operator would."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.chaos.plan import FACE_ID, TENANTS, ephemeral_profile, profiles
from tests.chaos.stack import Stack
from tests.support.cluster import TAVUS_API_KEY, admin


@dataclass(frozen=True)
class Tenants:
    api_keys: dict[str, str]
    persistent_pals: frozenset[str]


def provision(stack: Stack) -> Tenants:
    """Each tenant gets a persistent PAL on its Tavus account, one profile per strategy,
    an API key and a webhook endpoint for every event."""
    admin_url = stack.replicas[0].url
    api_keys: dict[str, str] = {}
    persistent: set[str] = set()
    for tenant in TENANTS:
        created_pal = httpx.post(
            f"{stack.simulator_url}/v2/pals",
            headers={"x-api-key": tenant.own_tavus_key or TAVUS_API_KEY},
            json={
                "pal_name": f"{tenant.id} persistent coach",
                "default_face_id": FACE_ID,
                "system_prompt": "You are a patient coach.",
            },
            timeout=10,
        )
        created_pal.raise_for_status()
        pal_id: str = created_pal.json()["pal_id"]
        persistent.add(pal_id)
        body = {
            "id": tenant.id,
            "name": f"Chaos tenant {tenant.id}",
            "max_concurrent_sessions": tenant.cap,
            "tavus_api_key": tenant.own_tavus_key,
            "profiles": profiles(pal_id),
            "default_profile": "reuse",
        }
        created = admin(admin_url, "POST", "/tenants", json=body)
        if created.status_code != 201:
            raise RuntimeError(f"creating tenant {tenant.id}: {created.text}")
        key = admin(admin_url, "POST", f"/tenants/{tenant.id}/api-keys", json={})
        if key.status_code != 201:
            raise RuntimeError(f"creating an API key for {tenant.id}: {key.text}")
        api_keys[tenant.id] = key.json()["key"]
        # Every event to one receiver on loopback, which production mode allows only so.
        endpoint = {"url": f"{stack.receiver_url}/{tenant.id}", "allow_http": True}
        hook = admin(
            admin_url,
            "POST",
            f"/tenants/{tenant.id}/webhook-endpoints",
            json={**endpoint, "allow_private": True},
        )
        if hook.status_code != 201:
            raise RuntimeError(f"adding a webhook endpoint for {tenant.id}: {hook.text}")
    return Tenants(api_keys, frozenset(persistent))


def retire_warm_pools(stack: Stack) -> None:
    """Take the pools out of the profiles, as an operator would: every pooled PAL must
    then be deleted on Tavus, which settling waits for and the checker verifies."""
    admin_url = stack.replicas[0].url
    for tenant in TENANTS:
        patch = {"profiles": {"ephemeral": ephemeral_profile(warm_pool=False)}}
        answer = admin(admin_url, "PATCH", f"/tenants/{tenant.id}", json=patch)
        if answer.status_code != 200:
            raise RuntimeError(f"retiring the warm pool of {tenant.id}: {answer.text}")
