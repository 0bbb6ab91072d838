"""Webhooks: a signed JSON POST for every create, update and delete of a table's records.

**Outbox.** ``enqueue`` runs inside the write transaction of the change (from
``RecordStore``'s create and update paths and from ``trash.delete_records``,
cascades included), so a delivery exists exactly when the change commits.
With no webhook on the table it costs one indexed query. The body is built
then, as the webhook's owner sees the record *now*: only records in the
owner's rows, hidden fields absent, values above the owner's clearance
masked (a system-owned webhook sees everything). It is stored sealed with the
data keys, like every personal value at rest, and erasing a record's history
(retention, data-subject erasure) strips its values from its deliveries too.

**Delivery.** ``deliver_due`` (the ``recordbase webhooks deliver`` command, or a
``DeliveryWorker`` thread) POSTs due deliveries with ``X-Recordbase-Event``,
``-Delivery``, ``-Timestamp`` and ``-Signature: sha256=<HMAC-SHA256 of
"<timestamp>.<body>">``. A 2xx answer delivers; anything else is retried after
30 s × 2^(attempt − 1) (capped at 6 h), and the 8th failure is final.

**Address checks.** Each hop's host is resolved once; every address it resolves
to must be public (not loopback, private, link-local, CGNAT, multicast,
reserved, unspecified, nor IPv4-mapped/6to4/Teredo/NAT64 carrying such an
address), and the connection goes to that checked address — with the
original host name for ``Host`` and TLS (SNI and certificate) — so a DNS
answer cannot change between the check and the connection. Redirects (at
most 3) are followed by hand and each hop is checked the same way. A refused
target fails the delivery at once, with nothing sent. ``allow_private``
(set only by an administrator) skips the address check for that webhook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import sqlalchemy as sa

from .access import Access
from .actor import Actor
from .audit import ERASED, SEALED, write_audit
from .errors import NotFound, PermissionDenied, Problem, ValidationError
from .models import Webhook, WebhookDelivery, utcnow

if TYPE_CHECKING:
    import http.client
    import socket

    from .core import Recordbase
    from .records import Record, RecordStore
    from .schema import TableSchema

webhooks_t: sa.Table = Webhook.__table__  # type: ignore[assignment]
deliveries_t: sa.Table = WebhookDelivery.__table__  # type: ignore[assignment]

EVENTS = ("create", "update", "delete", "automation")
SECRET_PREFIX = "whsec_"
MAX_ATTEMPTS = 8
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=6)
LEASE = dt.timedelta(minutes=2)  # a claimed delivery is not picked up again by another worker meanwhile
TIMEOUT = 5.0  # seconds, for connecting and for each read
MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_READ_LIMIT = 64 * 1024  # bytes of a response read before the connection is closed
_CHUNK = 500
_SYSTEM_OWNER = Actor.system("webhook")

Resolver = Callable[[str, int], Sequence[str]]
AddressCheck = Callable[[str], "str | None"]


# --- addresses ------------------------------------------------------------------------

_EXTRA_REFUSED = (
    (ipaddress.ip_network("0.0.0.0/8"), "a \"this network\" address (0.0.0.0/8)"),
    (ipaddress.ip_network("100.64.0.0/10"), "a carrier-grade NAT address (100.64.0.0/10)"),
    (ipaddress.ip_network("192.0.0.0/24"), "an IETF protocol address (192.0.0.0/24)"),
    (ipaddress.ip_network("198.18.0.0/15"), "a benchmarking address (198.18.0.0/15)"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_problem(address: str) -> str | None:
    """Why a webhook may not connect to ``address`` (an IP literal), or ``None`` when it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = None
        kind = ""
        if ip.ipv4_mapped is not None:
            # The issue refuses IPv4-mapped addresses outright: a public name never needs one.
            inner = address_problem(str(ip.ipv4_mapped))
            return f"{ip} is an IPv4-mapped IPv6 address" + (f" ({inner})" if inner else "")
        if ip.sixtofour is not None:
            embedded, kind = ip.sixtofour, "6to4"
        elif ip.teredo is not None:
            embedded, kind = ip.teredo[1], "Teredo"
        elif ip in _NAT64:
            embedded, kind = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
        if embedded is not None:
            inner = address_problem(str(embedded))
            if inner:
                return f"{ip} is a {kind} address carrying {embedded} ({inner})"
    for test, what in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
    ):
        if getattr(ip, test):
            return f"{ip} is {what}"
    if isinstance(ip, ipaddress.IPv4Address):
        for network, what in _EXTRA_REFUSED:
            if ip in network:
                return f"{ip} is {what}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return f"{ip} is a site-local address"
    if ip.is_private:
        return f"{ip} is a private address"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


class UnsafeTarget(Exception):
    """A target the webhook may not reach (a refused address, an unusable URL): final, nothing was sent."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (one DNS lookup)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_target(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a webhook URL; ``UnsafeTarget`` when it is not usable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a usable URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("the URL must start with http:// or https://")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("the URL may not carry a user name or password")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolver: Resolver = system_resolver,
    check: AddressCheck = address_problem,
) -> list[str]:
    """Resolve ``host`` once and return its addresses, each checked (``UnsafeTarget`` if any is refused)."""
    addresses = list(resolver(host, port))
    if not addresses:
        raise OSError(f"cannot resolve {host}: no address")
    if not allow_private:
        for address in addresses:
            problem = check(address)
            if problem:
                where = "" if host.strip("[]") == address else f"{host} resolves to {address}: "
                raise UnsafeTarget(f"refused: {where}{problem}, and this webhook may not reach private addresses")
    return addresses


# --- connections to a checked address ---------------------------------------------------


def _pinned(addresses: Sequence[str], timeout: float) -> Callable[..., socket.socket]:
    """A ``create_connection`` that ignores the host name and connects to the checked addresses."""
    import socket

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        port = address[1]
        last: OSError | None = None
        for ip in addresses:
            try:
                return socket.create_connection((ip, port), timeout)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    return create_connection


@dataclass
class Response:
    status: int
    url: str


def _post_once(scheme: str, host: str, port: int, path: str, addresses: Sequence[str], body: bytes,
               headers: Mapping[str, str], timeout: float) -> tuple[int, str | None]:
    import http.client  # imported when delivering, not by every process that writes records
    import ssl

    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn._create_connection = _pinned(addresses, timeout)  # type: ignore[attr-defined]
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        response = conn.getresponse()
        location = response.getheader("Location")
        response.read(_READ_LIMIT)
        return response.status, location
    finally:
        conn.close()


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, allow_private: bool = False,
    resolver: Resolver = system_resolver, check: AddressCheck = address_problem, timeout: float = TIMEOUT,
) -> Response:
    """POST ``body`` to ``url``, following at most 3 redirects; every hop's addresses checked before connecting.

    Raises ``UnsafeTarget`` for a refused hop (nothing is sent to it) and
    ``OSError`` / ``http.client.HTTPException`` for network failures.
    """
    for _hop in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = parse_target(url)
        addresses = checked_addresses(host, port, allow_private=allow_private, resolver=resolver, check=check)
        status, location = _post_once(scheme, host, port, path, addresses, body, headers, timeout)
        if status not in _REDIRECTS or not location:
            return Response(status, url)
        url = urljoin(url, location)
    raise OSError(f"more than {MAX_REDIRECTS} redirects")


# --- signing ---------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


# --- managing webhooks ----------------------------------------------------------------------


def _require_url(url: str, allow_private: bool) -> str:
    url = (url or "").strip()
    if len(url) > 2000:
        raise ValidationError("the URL is too long", [Problem("/url", "at most 2000 characters")])
    try:
        _scheme, host, _port, _path = parse_target(url)
    except UnsafeTarget as exc:
        raise ValidationError(str(exc), [Problem("/url", str(exc))]) from None
    if not allow_private:
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            name = host.lower().rstrip(".")
            literal = name == "localhost" or name.endswith(".localhost")
            problem = f"{host} is a loopback name" if literal else None
        else:
            problem = address_problem(host)
        if problem:
            message = f"refused: {problem}; only an administrator may allow private addresses"
            raise ValidationError(message, [Problem("/url", message)])
    return url


def _require_events(events: Sequence[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or EVENTS))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        message = f'unknown event "{unknown[0]}"; events are {", ".join(EVENTS)}'
        raise ValidationError(message, [Problem("/events", message)])
    return [e for e in EVENTS if e in chosen]


def create(
    rb: Recordbase, actor: Actor, app: str, table: str, url: str, events: Sequence[str] | None = None,
    *, owner_email: str | None = None, allow_private: bool = False,
) -> tuple[int, str]:
    """A new webhook on ``app``.``table``: (its id, its secret — shown only now)."""
    from . import users

    schema = rb.app(app)
    if table not in schema.tables:
        raise NotFound(f'app "{app}" has no table "{table}"')
    ts = schema.tables[table]
    full = actor.kind == "system" or actor.is_admin
    if not full:
        if not actor.roles_in(app):  # like every other call: an app without a role of yours is not there
            raise NotFound(f'no app "{app}" is installed')
        access = Access.for_actor(actor, ts)
        access.require("manage")
        access.require("read")
    if allow_private and not full:
        raise PermissionDenied("only an administrator may let a webhook reach private addresses",
                               [Problem("/allow_private", "only an administrator may set this")])
    url = _require_url(url, allow_private)
    chosen = _require_events(events)
    with rb.write() as conn:
        owner_id: int | None
        if owner_email is not None:
            owner = users.require_user(conn, owner_email)
            owner_id = owner["id"]
            if not full and owner_id != actor.user_id:
                raise PermissionDenied("a webhook you create sends what you see: you may not name another owner",
                                       [Problem("/owner", "only an administrator may name another owner")])
        else:
            owner_id = actor.user_id  # None for a system actor: a system-owned webhook
        if owner_id is not None:
            owner_actor = users.load_actor(conn, owner_id)
            if owner_actor is None:
                raise ValidationError("the owner is deactivated", [Problem("/owner", "the owner is deactivated")])
            seen = Access.for_actor(owner_actor, ts)
            if not seen.full and not seen.readers:
                raise ValidationError(f'the owner may not read "{table}"', [Problem("/owner", f'the owner may not read "{table}"')])
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        webhook_id = conn.execute(sa.insert(webhooks_t).values(
            app_id=schema.pk, table_id=ts.pk, owner_id=owner_id, url=url, secret=rb.keys.encrypt(secret, "webhook"),
            events=chosen, allow_private=allow_private, active=True, created_at=utcnow(), created_by=actor.label,
        ).returning(webhooks_t.c.id)).scalar_one()
        write_audit(conn, actor, "webhook_create", app_id=schema.pk, table_id=ts.pk, entries=[(None, {
            "webhook_id": webhook_id, "url": url, "events": chosen, "owner_id": owner_id, "allow_private": allow_private})])
    return webhook_id, secret


def remove(rb: Recordbase, actor: Actor, webhook_id: int) -> None:
    """Delete a webhook and its delivery log: its owner, an administrator, or a manager of its table."""
    with rb.write() as conn:
        row = conn.execute(sa.select(webhooks_t).where(webhooks_t.c.id == webhook_id)).mappings().first()
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        if not (actor.kind == "system" or actor.is_admin or (actor.user_id is not None and actor.user_id == row["owner_id"])):
            ts = _table_by_pk(rb, conn, row["app_id"], row["table_id"])
            if ts is None or not any(r.can("manage") for r in Access.for_actor(actor, ts).roles):
                raise NotFound(f"no webhook {webhook_id}")
        conn.execute(sa.delete(deliveries_t).where(deliveries_t.c.webhook_id == webhook_id))
        conn.execute(sa.delete(webhooks_t).where(webhooks_t.c.id == webhook_id))
        write_audit(conn, actor, "webhook_delete", app_id=row["app_id"], table_id=row["table_id"],
                    entries=[(None, {"webhook_id": webhook_id, "url": row["url"]})])


def _table_by_pk(rb: Recordbase, conn: sa.Connection, app_pk: int, table_pk: int) -> TableSchema | None:
    from .migrate import apps_t

    slug = conn.execute(sa.select(apps_t.c.slug).where(apps_t.c.id == app_pk)).scalar()
    if slug is None:
        return None
    return next((t for t in rb.app(slug).tables.values() if t.pk == table_pk), None)


def listing(rb: Recordbase, app: str | None = None) -> list[dict[str, Any]]:
    """Every webhook (never its secret), with counts of its pending and failed deliveries."""
    from .migrate import apps_t, tables_t
    from .users import users_t

    w, d = webhooks_t, deliveries_t
    stmt = (
        sa.select(w.c.id, apps_t.c.slug.label("app"), tables_t.c.slug.label("table"), w.c.url, w.c.events,
                  users_t.c.email.label("owner"), w.c.allow_private, w.c.active, w.c.created_at, w.c.created_by)
        .join(apps_t, apps_t.c.id == w.c.app_id).join(tables_t, tables_t.c.id == w.c.table_id)
        .outerjoin(users_t, users_t.c.id == w.c.owner_id).order_by(w.c.id)
    )
    if app is not None:
        stmt = stmt.where(apps_t.c.slug == app)
    with rb.read() as conn:
        hooks = [dict(r) for r in conn.execute(stmt).mappings()]
        counts = conn.execute(
            sa.select(d.c.webhook_id, d.c.status, sa.func.count()).where(d.c.status.in_(["pending", "failed"]))
            .group_by(d.c.webhook_id, d.c.status)
        ).all()
    for hook in hooks:
        hook["pending"] = sum(n for wid, status, n in counts if wid == hook["id"] and status == "pending")
        hook["failed"] = sum(n for wid, status, n in counts if wid == hook["id"] and status == "failed")
    return hooks


def delivery_log(rb: Recordbase, webhook_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """A webhook's deliveries, newest first (without their bodies)."""
    d = deliveries_t
    with rb.read() as conn:
        if conn.execute(sa.select(webhooks_t.c.id).where(webhooks_t.c.id == webhook_id)).first() is None:
            raise NotFound(f"no webhook {webhook_id}")
        rows = conn.execute(
            sa.select(*(c for c in d.c if c.name != "payload")).where(d.c.webhook_id == webhook_id)
            .order_by(d.c.id.desc()).limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


# --- the outbox -------------------------------------------------------------------------------


def _seal(rb: Recordbase, webhook_id: int, payload: Mapping[str, Any]) -> dict[str, str]:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return {SEALED: rb.keys.encrypt(text, f"webhook:{webhook_id}")}


def _unseal(rb: Recordbase, webhook_id: int, stored: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(rb.keys.decrypt(stored[SEALED], f"webhook:{webhook_id}"))  # type: ignore[no-any-return]


def _owner_view(conn: sa.Connection, store: RecordStore, owner: Actor, records: Sequence[Record]) -> dict[int, dict[str, Any]]:
    """record id → its fields as ``owner`` sees them, for the records in the owner's rows only."""
    ts = store.ts
    access = Access.for_actor(owner, ts)
    if access.full:
        return {r.id: dict(r.fields) for r in records}
    readers = access.readers
    if not readers:
        return {}
    now = utcnow()
    dialect = conn.dialect.name
    columns = [sa.case((access.role_condition(r, now, dialect), 1), else_=0) for r in readers]
    flags: dict[int, list[int]] = {}
    ids = [r.id for r in records]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for row in conn.execute(sa.select(ts.table.c.id, *columns).where(ts.table.c.id.in_(chunk))):
            flags[row[0]] = list(row[1:])
    out = {}
    for record in records:
        matching = [r for r, flag in zip(readers, flags.get(record.id, []), strict=False) if flag]
        if matching:
            out[record.id] = access.present(dict(record.fields), matching)
    return out


def _read_records(conn: sa.Connection, store: RecordStore, ids: Sequence[int]) -> list[Record]:
    fields = list(store.ts.fields.values())
    records: list[Record] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        rows = conn.execute(sa.select(store.table).where(store.table.c.id.in_(chunk)).order_by(store.table.c.id)).mappings().all()
        many = store._load_many(conn, chunk, fields)
        records.extend(store._to_record(row, fields, many.get(row["id"], {})) for row in rows)
    return records


def enqueue(
    conn: sa.Connection, store: RecordStore, event: str, records_or_ids: Sequence[Any],
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Queue a delivery per active webhook of the table for ``event`` on these records, in ``conn``'s transaction.

    ``records_or_ids``: ``Record`` objects with every field's stored value, or
    ids of records still in the table (read here). Returns how many were queued.
    """
    if not records_or_ids:
        return 0
    ts = store.ts
    # The common case, a table without webhooks, costs one indexed lookup on the driver's fast path.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if conn.exec_driver_sql(f"SELECT 1 FROM rb_webhook WHERE table_id = {mark} AND active = {mark} LIMIT 1", (ts.pk, True)).first() is None:
        return 0
    hooks = conn.execute(
        sa.select(webhooks_t.c.id, webhooks_t.c.owner_id, webhooks_t.c.events)
        .where(webhooks_t.c.table_id == ts.pk, webhooks_t.c.active.is_(True))
    ).all()
    hooks = [h for h in hooks if event in (h.events or [])]
    if not hooks:
        return 0
    from .users import load_actor

    first = records_or_ids[0]
    records = list(records_or_ids) if hasattr(first, "fields") else _read_records(conn, store, list(records_or_ids))
    now = utcnow()
    occurred = now.isoformat()
    rows = []
    for hook in hooks:
        owner = _SYSTEM_OWNER if hook.owner_id is None else load_actor(conn, hook.owner_id)
        if owner is None:  # a deactivated owner's webhook sends nothing
            continue
        seen = _owner_view(conn, store, owner, records)
        for record in records:
            values = seen.get(record.id)
            if values is None:
                continue
            body = {"event": event, "app": ts.app.slug, "table": ts.slug,
                    "record": replace(record, fields=values).as_json(ts), "occurred_at": occurred, **(detail or {})}
            rows.append({
                "webhook_id": hook.id, "event": event, "record_id": record.id, "payload": _seal(store.rb, hook.id, body),
                "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now,
            })
    for start in range(0, len(rows), _CHUNK):
        conn.execute(sa.insert(deliveries_t), rows[start : start + _CHUNK])
    return len(rows)


def forget(conn: sa.Connection, table_pk: int, record_ids: Sequence[int]) -> int:
    """Drop the values from the deliveries of records whose history is being erased (see ``audit.erase_values``).

    A pending delivery still goes out — the receiver learns of the change —
    as ``{"record": {"id": …, "fields": {}}, "erased": true, …}``. Returns how
    many deliveries changed.
    """
    w, d = webhooks_t, deliveries_t
    ids = list(record_ids)
    if not ids:
        return 0
    hook_ids = list(conn.execute(sa.select(w.c.id).where(w.c.table_id == table_pk)).scalars())
    if not hook_ids:
        return 0
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        changed += conn.execute(
            sa.update(d).where(d.c.webhook_id.in_(hook_ids), d.c.record_id.in_(chunk)).values(payload={ERASED: True})
        ).rowcount
    return changed


# --- delivering ---------------------------------------------------------------------------------


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, … capped at 6 h."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


@dataclass
class _Outcome:
    status: str  # delivered | pending | failed
    code: int | None = None
    error: str | None = None


@dataclass
class DeliveryCounts:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "retrying": self.retrying, "failed": self.failed}


def _claim(rb: Recordbase, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Take up to ``limit`` due deliveries, leasing each (compare-and-set) so a parallel worker skips them."""
    d = deliveries_t
    claimed = []
    with rb.write() as conn:
        due = conn.execute(
            sa.select(d.c.id, d.c.webhook_id, d.c.event, d.c.record_id, d.c.payload, d.c.attempts, d.c.next_attempt_at,
                      d.c.created_at)
            .where(d.c.status == "pending", d.c.next_attempt_at <= now).order_by(d.c.next_attempt_at, d.c.id).limit(limit)
        ).mappings().all()
        for row in due:
            done = conn.execute(
                sa.update(d).where(d.c.id == row["id"], d.c.status == "pending", d.c.next_attempt_at == row["next_attempt_at"])
                .values(next_attempt_at=now + LEASE)
            ).rowcount
            if done == 1:
                claimed.append({**row, "lease": now + LEASE})
    return claimed


def _renew(rb: Recordbase, delivery: dict[str, Any]) -> bool:
    """Extend this worker's lease just before sending; False when the lease ran out and another worker took it.

    A batch can take longer than one lease (slow receivers, redirects): renewing
    per delivery keeps a second sender from sending what this one is sending.
    """
    lease = utcnow() + LEASE
    d = deliveries_t
    with rb.write() as conn:
        done = conn.execute(
            sa.update(d).where(d.c.id == delivery["id"], d.c.status == "pending", d.c.next_attempt_at == delivery["lease"])
            .values(next_attempt_at=lease)
        ).rowcount
    if done == 1:
        delivery["lease"] = lease
    return done == 1


def _attempt(rb: Recordbase, hook: Mapping[str, Any] | None, delivery: Mapping[str, Any], now: dt.datetime,
             resolver: Resolver, check: AddressCheck) -> _Outcome:
    import http.client

    if hook is None:
        return _Outcome("failed", error="the webhook was removed")
    if not hook["active"]:
        return _Outcome("failed", error="the webhook is disabled")
    try:
        secret = rb.keys.decrypt(hook["secret"], "webhook")
        stored = delivery["payload"] or {}
        if ERASED in stored:
            content = {"event": delivery["event"], "app": hook["app"], "table": hook["table"],
                       "record": {"id": delivery["record_id"], "fields": {}},
                       "occurred_at": delivery["created_at"].isoformat(), "erased": True}
        else:
            content = _unseal(rb, hook["id"], stored)
        body = {**content, "delivery_id": delivery["id"], "webhook_id": hook["id"]}
    except Exception as exc:  # a missing key: nothing can be sent, now or later
        return _Outcome("failed", error=f"cannot unseal the delivery: {type(exc).__name__}")
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json", "User-Agent": "Recordbase-Webhook/1",
        "X-Recordbase-Event": delivery["event"], "X-Recordbase-Delivery": str(delivery["id"]),
        "X-Recordbase-Timestamp": timestamp, "X-Recordbase-Signature": signature(secret, timestamp, data),
    }
    try:
        response = post(hook["url"], data, headers, allow_private=hook["allow_private"], resolver=resolver, check=check)
    except UnsafeTarget as exc:
        return _Outcome("failed", error=str(exc))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return _retry(delivery, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if 200 <= response.status < 300:
        return _Outcome("delivered", code=response.status)
    return _retry(delivery, response.status, f"HTTP {response.status}")


def _retry(delivery: Mapping[str, Any], code: int | None, error: str) -> _Outcome:
    final = delivery["attempts"] + 1 >= MAX_ATTEMPTS
    return _Outcome("failed" if final else "pending", code=code, error=error + (f"; gave up after {MAX_ATTEMPTS} attempts" if final else ""))


def deliver_due(
    rb: Recordbase, *, now: dt.datetime | None = None, limit: int = 100,
    resolver: Resolver = system_resolver, check: AddressCheck = address_problem,
) -> DeliveryCounts:
    """Send the deliveries that are due (at most ``limit``); never raises. Safe to run from cron and from several workers."""
    counts = DeliveryCounts()
    try:
        now = now or utcnow()
        claimed = _claim(rb, now, limit)
        if not claimed:
            return counts
        from .migrate import apps_t, tables_t

        w = webhooks_t
        with rb.read() as conn:
            hooks = {r["id"]: dict(r) for r in conn.execute(
                sa.select(w, apps_t.c.slug.label("app"), tables_t.c.slug.label("table"))
                .join(apps_t, apps_t.c.id == w.c.app_id).join(tables_t, tables_t.c.id == w.c.table_id)
                .where(w.c.id.in_({c["webhook_id"] for c in claimed}))).mappings()}
    except Exception as exc:
        counts.errors.append(f"{type(exc).__name__}: {exc}")
        return counts
    for delivery in claimed:
        try:
            if not _renew(rb, delivery):
                continue  # another worker holds it now
            outcome = _attempt(rb, hooks.get(delivery["webhook_id"]), delivery, now, resolver, check)
        except Exception as exc:  # a bug must not stop the other deliveries
            outcome = _retry(delivery, None, f"{type(exc).__name__}: {exc}")
        attempts = delivery["attempts"] + 1
        values: dict[str, Any] = {
            "status": outcome.status, "attempts": attempts, "last_status_code": outcome.code,
            "last_error": None if outcome.error is None else outcome.error[:1000],
            "next_attempt_at": now + backoff(attempts) if outcome.status == "pending" else None,
        }
        if outcome.status == "delivered":
            values["delivered_at"] = utcnow()
        try:
            with rb.write() as conn:
                conn.execute(sa.update(deliveries_t).where(
                    deliveries_t.c.id == delivery["id"], deliveries_t.c.next_attempt_at == delivery["lease"]
                ).values(values))
        except Exception as exc:
            counts.errors.append(f"delivery {delivery['id']}: {type(exc).__name__}: {exc}")
            continue
        if outcome.status == "delivered":
            counts.delivered += 1
        elif outcome.status == "pending":
            counts.retrying += 1
        else:
            counts.failed += 1
    return counts


def prune(rb: Recordbase, *, days: int = 30, now: dt.datetime | None = None) -> int:
    """Delete delivered and failed deliveries older than ``days`` (their sealed bodies with them); returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    d = deliveries_t
    with rb.write() as conn:
        return conn.execute(sa.delete(d).where(d.c.status.in_(["delivered", "failed"]), d.c.created_at < cutoff)).rowcount


class DeliveryWorker:
    """A daemon thread that runs ``deliver_due`` every ``interval`` seconds (for the web server)."""

    def __init__(self, rb: Recordbase, interval: float = 5.0, limit: int = 100) -> None:
        self.rb = rb
        self.interval = interval
        self.limit = limit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DeliveryWorker:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="recordbase-webhooks", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            counts = deliver_due(self.rb, limit=self.limit)
            if counts.attempted < self.limit:  # a full batch: go again at once
                self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
