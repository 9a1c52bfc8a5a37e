#!/usr/bin/env python3
"""Writes the benchmark bundle, and the matching nginx `location` blocks.

The bundle serves `--routes` operations in total: filler APIs shaped like real
CRUD services (`/svc07/v1/orders/{orderId}/lines/{lineId}`, ...) and, last in the
list, the `bench` API whose `GET /bench/v1/items/{id}` is what the load hits.
Every API has its own upstream (all pointing at the one backend), as a real
bundle would. nginx gets one prefix `location` per API, which is how one would
configure nginx in front of the same services.

`--jwt-pem` makes it the product scenario (RS256 bearer token, per-consumer rate
limit); `--redis-url` then makes that limit `scope: global`, on that Redis.
"""

import argparse
import json

RESOURCES = ["orders", "customers", "invoices", "products", "shipments", "users",
             "accounts", "payments", "carts", "reviews"]
SUB = ["lines", "notes", "events", "attachments"]

BENCH_OPS = [
    ("listItems", "GET", "/items"),
    ("createItem", "POST", "/items"),
    ("getItem", "GET", "/items/{id}"),
    ("replaceItem", "PUT", "/items/{id}"),
    ("deleteItem", "DELETE", "/items/{id}"),
]


def filler_ops(n):
    """Up to `n` CRUD operations over resources and sub-resources."""
    ops = []
    for res in RESOURCES:
        one = res[:-1]
        item = f"/{res}/{{{one}Id}}"
        ops += [
            (f"list_{res}", "GET", f"/{res}"),
            (f"create_{one}", "POST", f"/{res}"),
            (f"get_{one}", "GET", item),
            (f"update_{one}", "PATCH", item),
            (f"delete_{one}", "DELETE", item),
        ]
        for sub in SUB:
            ops += [
                (f"list_{one}_{sub}", "GET", f"{item}/{sub}"),
                (f"get_{one}_{sub[:-1]}", "GET", f"{item}/{sub}/{{{sub[:-1]}Id}}"),
            ]
    return ops[:n]


# The request contract of `POST /bench/v1/items` with `--validate`: a JSON item as
# an OpenAPI 3.0 document would describe it (draft 4 after the builder's rewrite).
ITEM_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "priceCents", "tags"],
    "properties": {
        "id": {"type": "string", "pattern": "^item-[0-9]+$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 2000},
        "priceCents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "stock": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "maxLength": 40}},
        "dimensions": {
            "type": "object",
            "properties": {k: {"type": "number", "minimum": 0} for k in ("width", "height", "depth", "weight")},
        },
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "active": {"type": "boolean"},
    },
}

# A 1 KiB body that satisfies ITEM_SCHEMA.
def item_body():
    body = {
        "id": "item-42", "name": "benchmark item", "priceCents": 1999, "currency": "EUR",
        "stock": 7, "active": True,
        "tags": [f"tag-{i}" for i in range(12)],
        "dimensions": {"width": 10.5, "height": 20.25, "depth": 3, "weight": 0.75},
        "attributes": {f"attr{i}": f"value number {i}" for i in range(14)},
        "description": "",
    }
    text = json.dumps(body, separators=(",", ":"))
    body["description"] = "x" * (1024 - len(text))
    text = json.dumps(body, separators=(",", ":"))
    assert len(text) == 1024, len(text)
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--routes", type=int, required=True, help="operations in total")
    p.add_argument("--per-api", type=int, default=25, help="operations per filler API")
    p.add_argument("--backend", required=True, help="backend URL, e.g. http://127.0.0.1:9000")
    p.add_argument("--listen", required=True, help="API listener host:port")
    p.add_argument("--admin", required=True, help="admin listener host:port")
    p.add_argument("--analytics", default="none", help="`none`, `stdout` or a file path")
    p.add_argument("--out", required=True, help="bundle file to write")
    p.add_argument("--nginx-locations", help="also write nginx location blocks here")
    p.add_argument("--jwt-pem", help="the product scenario: the bench API needs an RS256 "
                   "bearer token checked with this public key, and has a per-consumer rate limit")
    p.add_argument("--jwt-cache", type=int, default=10000, help="the JWT provider's cacheSize")
    p.add_argument("--redis-url", help="with --jwt-pem: the per-consumer limit is `scope: global`, "
                   "its state in this Redis (`redis://127.0.0.1:PORT`)")
    p.add_argument("--redis-timeout-ms", type=int, default=5,
                   help="rateLimits.redis.timeoutMs (the gateway's default is 5)")
    p.add_argument("--validate", action="store_true",
                   help="request validation on `POST /bench/v1/items` (1 KiB JSON item schema)")
    p.add_argument("--post-body", help="write the 1 KiB JSON item body here")
    a = p.parse_args()
    if a.redis_url and not a.jwt_pem:
        p.error("--redis-url needs --jwt-pem (the global limit is the product scenario's)")

    apis, upstreams = [], {}
    left = a.routes - len(BENCH_OPS)
    i = 0
    while left > 0:
        ops = filler_ops(min(a.per_api, left))
        name = f"svc{i:02d}"
        upstreams[name] = {"urls": [a.backend]}
        apis.append({
            "name": name, "version": "v1", "basePath": f"/{name}/v1", "upstream": name,
            "operations": [{"id": o, "method": m, "path": path} for o, m, path in ops],
        })
        left -= len(ops)
        i += 1
    upstreams["bench"] = {"urls": [a.backend]}
    bench_ops = [{"id": o, "method": m, "path": path} for o, m, path in BENCH_OPS]
    if a.validate:
        bench_ops[1]["request"] = {
            "dialect": "draft4",
            "body": {"required": True, "content": [
                {"mediaType": "application/json", "schema": ITEM_SCHEMA}]},
        }
    bench = {
        "name": "bench", "version": "v1", "basePath": "/bench/v1", "upstream": "bench",
        "operations": bench_ops,
    }
    apis.append(bench)
    extra = {}
    if a.jwt_pem:
        with open(a.jwt_pem) as f:
            pem = f.read()
        extra["auth"] = {"providers": {"idp": {
            "type": "jwt", "issuer": "https://idp.bench.invalid/", "algorithms": ["RS256"],
            "keys": [{"pem": pem}], "cacheCapacity": a.jwt_cache}}}
        # Never reached: the limit is checked and counted on every request.
        policy = {"requests": 1_000_000_000, "periodSeconds": 1, "key": "consumer"}
        extra["rateLimits"] = {"policies": {"perConsumer": policy}}
        if a.redis_url:
            # The same policy, decided by one Lua script on Redis per request.
            policy["scope"] = "global"
            extra["rateLimits"]["redis"] = {"url": a.redis_url, "timeoutMs": a.redis_timeout_ms}
        bench["rateLimit"] = "perConsumer"
        bench["securitySchemes"] = {"bearer": {
            "provider": "idp", "in": "header", "name": "Authorization", "prefix": "Bearer"}}
        for op in bench["operations"]:
            op["security"] = [{"bearer": []}]
    if a.post_body:
        with open(a.post_body, "w") as f:
            f.write(item_body())

    if a.analytics in ("none", "stdout"):
        analytics = {"sink": a.analytics}
    else:
        analytics = {"sink": "file", "path": a.analytics}
    bundle = {
        "schemaVersion": 1,
        "gateway": {"name": "bench", "version": "1.0.0"},
        "listeners": {"api": {"address": a.listen}, "admin": {"address": a.admin}},
        "upstreams": upstreams,
        "apis": apis,
        "analytics": analytics,
        **extra,
    }
    with open(a.out, "w") as f:
        json.dump(bundle, f, indent=1, sort_keys=True)
        f.write("\n")

    if a.nginx_locations:
        with open(a.nginx_locations, "w") as f:
            for api in apis:
                f.write(f"location {api['basePath']}/ {{ proxy_pass http://backend/; }}\n")

    total = sum(len(x["operations"]) for x in apis)
    assert total == max(a.routes, len(BENCH_OPS)), (total, a.routes)


if __name__ == "__main__":
    main()
