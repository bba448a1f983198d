"""Malformed requests for every route a server offers: read from its /openapi.json (plus the web pages, which
the schema leaves out), each path parameter, query parameter, JSON field and multipart part given wrong types,
huge and negative numbers, bad UUIDs, NUL bytes and odd unicode, oversized bodies and broken multipart. Used by
tests/api/test_sweep.py against a live server; `python tests/api/sweep.py URL API_KEY` runs it against any."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from PIL import Image

PAGES = [("get", "/login"), ("get", "/sign-up"), ("get", "/account"), ("get", "/admin"), ("get", "/"),
         ("get", "/photos/{asset_id}"), ("post", "/login"), ("post", "/logout")]  # fmt: skip
PATH_VALUES = ["not-a-uuid", "0", "-1", "9" * 40, "%00", "\x00", "é" * 40, "a" * 5000, "..%2F..%2Fetc%2Fpasswd",
               str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000", "{}", " ", "null"]  # fmt: skip
QUERY_VALUES = ["abc", "-1", "0", "99999999999999999999999", "1e309", "nan", "inf", "\x00", "é" * 30, "",
                "a" * 10_000, "2020-13-45", "0001-01-01T00:00:00", "[]", "true"]  # fmt: skip
FIELD_VALUES: list[Any] = [None, True, -1, 0, 2**70, -(2**70), 1e308, -1e308, 0.5, "x", "\x00", "é\U0010ffff" * 300,
                           "a" * 100_000, [], [None] * 3, {}, {"a": {"b": {}}}, "0001-01-01", "9999-12-31T23:59:59",
                           "../../etc/passwd", str(uuid.uuid4()), ["\x00"], [2**70]]  # fmt: skip
RAW_BODIES = [b"", b"not json", b"null", b"[]", b"123", b'"s"', b"{", b"\xff\xfe\x00", b"[" * 5000 + b"]" * 5000,
              b'{"a":' * 3000 + b"1" + b"}" * 3000, json.dumps({"x": "\x00"}).encode(), b"{}" + b" " * 100]  # fmt: skip
NOT_SERVER_ERRORS = range(100, 500)


@dataclass
class Case:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: Any = None
    data: Any = None
    label: str = ""


def _default(schema: dict, defs: dict) -> Any:
    """A plausible value of a JSON schema (a base body to mutate one field of)."""
    if "$ref" in schema:
        return _default(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _default(options[0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _default(v, defs) for k, v in props.items() if k in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return False
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("format") == "date-time":
        return "2020-01-01T00:00:00Z"
    if schema.get("format") == "email" or "@" in str(schema.get("pattern", "")):
        return "sweep@example.org"
    return "x" * max(1, schema.get("minLength", 1))


def _json_cases(method: str, path: str, schema: dict, defs: dict) -> Iterator[Case]:
    resolved = defs[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
    base = _default(resolved, defs)
    for raw in RAW_BODIES:
        yield Case(method, path, content=raw, headers={"content-type": "application/json"}, label=f"raw {raw[:12]!r}")
    yield Case(method, path, content=b'{"a": "' + b"x" * (5 << 20) + b'"}', headers={"content-type":
               "application/json"}, label="5 MB body")  # fmt: skip
    yield Case(method, path, json_body=base, label="base")
    for name in resolved.get("properties", {}):
        for value in FIELD_VALUES:
            yield Case(method, path, json_body={**base, name: value}, label=f"{name}={str(value)[:20]!r}")
    yield Case(method, path, json_body={**base, "unknown\x00": 1}, label="unknown field")


def _multipart_cases(method: str, path: str, schema: dict, defs: dict) -> Iterator[Case]:
    resolved = defs[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    png = buf.getvalue()
    files_fields = [
        k for k, v in resolved.get("properties", {}).items() if v.get("format") == "binary" or "contentMediaType" in v
    ]
    text_fields = [k for k in resolved.get("properties", {}) if k not in files_fields]
    ctype = {"content-type": "multipart/form-data; boundary=zzz"}
    yield Case(method, path, content=b"--zzz\r\nbroken", headers=ctype, label="truncated multipart")
    yield Case(method, path, content=b"", headers=ctype, label="empty multipart")
    yield Case(method, path, content=b"x", headers={"content-type": "multipart/form-data"}, label="no boundary")
    yield Case(method, path, content=b"--zzz--\r\n", headers=ctype, label="no parts")
    parts = b"".join(b'--zzz\r\nContent-Disposition: form-data; name="p%d"\r\n\r\nv\r\n' % i for i in range(3000))
    yield Case(method, path, content=parts + b"--zzz--\r\n", headers=ctype, label="3000 parts")
    for f in files_fields:
        uploads = [("q.png", png), ("", png), ("\x00.png", png), ("é" * 300 + ".png", png), ("../../x.png", png),
                   ("e.png", b""), ("t.png", b"text"), ("big.png", b"\x89PNG" * (1 << 20)),
                   ("t.jpg", b"\xff\xd8\xff" + b"\x00" * 100)]  # fmt: skip
        for name, data in uploads:
            yield Case(method, path, files={f: (name, data)}, label=f"file {name[:10]!r} {len(data)} B")
        yield Case(method, path, data={f: "not a file"}, label="file as text")
        for t in text_fields:
            for value in ("", "\x00", "-1", "abc", "9" * 30, "[" * 3000, "é" * 10_001, "{}", "null"):
                yield Case(method, path, files={f: ("q.png", png)}, data={t: value}, label=f"{t}={value[:10]!r}")


def cases(openapi: dict, ids: dict[str, str]) -> Iterator[Case]:
    """Every malformed request for the operations in `openapi`; `ids` gives real ids for path parameters."""
    defs = openapi.get("components", {}).get("schemas", {})
    ops = [(m, p, op) for p, item in openapi["paths"].items() for m, op in item.items()]
    ops += [(m, p, {"parameters": [{"name": "asset_id", "in": "path"}]} if "{" in p else {}) for m, p in PAGES]
    for method, path, op in ops:
        params = op.get("parameters", [])
        path_names = [p["name"] for p in params if p["in"] == "path"]
        real = path.format(**{n: ids.get(n, str(uuid.uuid4())) for n in path_names})
        for n in path_names:
            for v in PATH_VALUES:
                yield Case(method, path.replace("{" + n + "}", quote(v, safe="%")), label=f"path {n}={v[:12]!r}")
        for p in (p for p in params if p["in"] == "query"):
            for v in QUERY_VALUES:
                yield Case(method, real, params={p["name"]: v}, label=f"query {p['name']}={v[:12]!r}")
        content = (op.get("requestBody") or {}).get("content", {})
        for ctype, spec in content.items():
            if ctype == "application/json":
                yield from _json_cases(method, real, spec["schema"], defs)
            elif ctype == "multipart/form-data":
                yield from _multipart_cases(method, real, spec["schema"], defs)
            else:
                for raw in (b"", b"ids=" + b"x" * 100_000, b"ids=%00", b"\xff\xfe", b"a=" + b"&a=" * 5000):
                    yield Case(method, real, content=raw, headers={"content-type": ctype}, label=f"form {raw[:8]!r}")
        if not content:
            yield Case(method, real, json_body={"unexpected": [1] * 1000}, label="unexpected body")
            yield Case(method, real, params={"\x00": "\x00", "page": "-1"}, label="stray query")


def send(client: httpx.Client, case: Case) -> httpx.Response:
    return client.request(
        case.method.upper(),
        case.path,
        params=case.params or None,
        json=case.json_body if case.content is None and case.files is None and case.data is None else None,
        content=case.content,
        headers=case.headers or None,
        files=case.files,
        data=case.data,
    )


def sweep(client: httpx.Client, ids: dict[str, str]) -> tuple[int, list[str]]:
    """Send every case; returns (how many were sent, a line for each answered with a 5xx or not at all)."""
    openapi = client.get("/openapi.json").json()
    sent, bad = 0, []
    for case in cases(openapi, ids):
        sent += 1
        try:
            r = send(client, case)
        except httpx.HTTPError as exc:
            bad.append(f"{case.method.upper()} {case.path[:60]} [{case.label}]: no answer ({type(exc).__name__})")
            continue
        if r.status_code not in NOT_SERVER_ERRORS:
            bad.append(f"{case.method.upper()} {case.path[:60]} [{case.label}]: {r.status_code} {r.text[:120]}")
    return sent, bad


if __name__ == "__main__":
    import sys

    url, key = sys.argv[1], sys.argv[2]
    with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=120) as c:
        items = c.get("/api/assets", params={"size": 1}).json()["items"]
        libs = c.get("/api/libraries").json()
        ids = {"asset_id": items[0]["id"] if items else str(uuid.uuid4()), "library_id": libs[0]["id"]}
        n, failures = sweep(c, ids)
    print(f"{n} requests, {len(failures)} answered 5xx or not at all")
    print("\n".join(failures))
