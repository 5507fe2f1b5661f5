"""Job entries in Redis, shared by every replica that names the same server and prefix.

Each entry is one key (``<prefix>e:<job_id>``, JSON) that expires with its lease or TTL. Done
entries are also indexed by finish time with their sizes, so a finish evicts the oldest past
the count and byte bounds; each change is one Lua script, atomic on the server.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from kubellm_runtime.jobs.table import Done, Held, Pending

_FINISH = """
local entry, index, sizes, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, fp, result, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[9]
local ttl_ms, now_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local max_entries, max_bytes, size = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local current = redis.call('GET', entry)
if not current then return 0 end
local held = cjson.decode(current)
if held.fp ~= fp or held.state ~= 'pending' then return 0 end
if size > max_bytes then redis.call('DEL', entry) return 0 end
local function drop(old)
  local old_entry = prefix .. 'e:' .. old
  local kept = redis.call('GET', old_entry)
  if kept and cjson.decode(kept).state == 'done' then redis.call('DEL', old_entry) end
  redis.call('DECRBY', total, tonumber(redis.call('HGET', sizes, old) or '0'))
  redis.call('HDEL', sizes, old)
  redis.call('ZREM', index, old)
end
for _, old in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now_ms - ttl_ms)) do drop(old) end
held.state, held.result = 'done', result
redis.call('SET', entry, cjson.encode(held), 'PX', ttl_ms)
redis.call('ZADD', index, now_ms, id)
redis.call('HSET', sizes, id, size)
redis.call('INCRBY', total, size)
while redis.call('ZCARD', index) > max_entries or tonumber(redis.call('GET', total)) > max_bytes do
  drop(redis.call('ZRANGE', index, 0, 0)[1])
end
return 1
"""

_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current then
  local held = cjson.decode(current)
  if held.fp == ARGV[1] and held.state == 'pending' then redis.call('DEL', KEYS[1]) end
end
return 0
"""


def _held(raw: bytes | str | None) -> Held | None:
    if raw is None:
        return None
    entry: dict[str, Any] = json.loads(raw)
    if entry["state"] == "done":
        return Done(entry["route"], entry["fp"], entry["result"])
    return Pending(entry["route"], entry["fp"])


class RedisBackend:
    """The job table's calls on a Redis server (``redis://`` or ``rediss://`` URL)."""

    def __init__(
        self, url: str, prefix: str, max_entries: int, max_bytes: int, ttl_s: float
    ) -> None:
        self.redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.prefix = prefix
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_ms = int(ttl_s * 1000)
        self._finish = self.redis.register_script(_FINISH)
        self._release = self.redis.register_script(_RELEASE)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}e:{job_id}"

    async def claim(self, job_id: str, route: str, fingerprint: str, lease_s: float) -> Held | None:
        pending = json.dumps({"state": "pending", "route": route, "fp": fingerprint})
        while True:
            if await self.redis.set(self._key(job_id), pending, nx=True, px=int(lease_s * 1000)):
                return None
            held = _held(await self.redis.get(self._key(job_id)))
            if held is not None:  # else it expired between the two calls: claim again
                return held

    async def peek(self, job_id: str) -> Held | None:
        return _held(await self.redis.get(self._key(job_id)))

    async def finish(self, job_id: str, fingerprint: str, result: str) -> bool:
        keys = [
            self._key(job_id),
            f"{self.prefix}index",
            f"{self.prefix}sizes",
            f"{self.prefix}bytes",
        ]
        args: list[str | int] = [
            job_id,
            fingerprint,
            result,
            self.ttl_ms,
            int(time.time() * 1000),
            self.max_entries,
            self.max_bytes,
            len(result.encode()),
            self.prefix,
        ]
        return bool(await self._finish(keys=keys, args=args))

    async def release(self, job_id: str, fingerprint: str) -> None:
        await self._release(keys=[self._key(job_id)], args=[fingerprint])
