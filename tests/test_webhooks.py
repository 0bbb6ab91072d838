"""Webhooks: the outbox written with the change, the owner's view, signing, retries and address refusal."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from access_defs import APP, DEALS_PERMISSIONS, PHONES, SYSTEM, crm_definition, make_user, seed
from recordbase import webhooks
from recordbase.errors import NotFound, PermissionDenied, ValidationError
from recordbase.models import utcnow
from recordbase.trash import erase_for_good

d_t = webhooks.deliveries_t
PUBLIC_URL = "https://hooks.example.com/recordbase"


# --- a real HTTP server on a loopback address -----------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    host: str = "127.0.0.1"
    script: list[int] = field(default_factory=list)  # statuses to answer in turn, then `default`
    default: int = 200
    location: str | None = None  # for redirect statuses
    received: list[Received] = field(default_factory=list)

    def start(self) -> LocalServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append(Received(self.path, dict(self.headers.items()), body))
                status = owner.script.pop(0) if owner.script else owner.default
                self.send_response(status)
                if owner.location and status in (301, 302, 303, 307, 308):
                    self.send_header("Location", owner.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    s = LocalServer().start()
    yield s
    s.stop()


# --- helpers ----------------------------------------------------------------------------------


def deliveries(rb, webhook_id: int | None = None) -> list[dict[str, Any]]:
    with rb.read() as conn:
        stmt = sa.select(d_t).order_by(d_t.c.id)
        if webhook_id is not None:
            stmt = stmt.where(d_t.c.webhook_id == webhook_id)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def body_of(rb, delivery: dict[str, Any]) -> dict[str, Any]:
    return webhooks._unseal(rb, delivery["webhook_id"], delivery["payload"])


def hook_on_deals(rb, url: str = PUBLIC_URL, **kwargs: Any) -> tuple[int, str]:
    return rb.create_webhook(SYSTEM, APP, "deals", url, **kwargs)


def resolver_for(names: dict[str, list[str]]):
    """A stand-in DNS: names map to the given addresses; an IP literal resolves to itself."""

    def resolve(host: str, port: int) -> list[str]:
        return names.get(host, [host])

    return resolve


SHOP = {
    "slug": "shop", "label": "Shop",
    "tables": [
        {"id": "tbl_customers", "slug": "customers", "label": "Customers",
         "fields": [{"id": "fld_c_name", "slug": "name", "label": "Name", "type": "text"}]},
        {"id": "tbl_orders", "slug": "orders", "label": "Orders",
         "fields": [
             {"id": "fld_o_title", "slug": "title", "label": "Title", "type": "text"},
             {"id": "fld_o_customer", "slug": "customer", "label": "Customer", "type": "link",
              "options": {"table": "customers", "on_delete": "cascade"}},
         ]},
    ],
}


# --- the outbox -------------------------------------------------------------------------------


def test_create_update_delete_each_queue_a_delivery(rb):
    seed(rb)
    webhook_id, _ = hook_on_deals(rb)
    deals = rb.records(SYSTEM, APP, "deals")
    deal = deals.create({"name": "Fir", "region": "east", "amount": 700, "phone": PHONES[1]})
    deal = deals.update(deal.id, {"amount": 750}, version=deal.version)
    deals.delete(deal.id)
    queued = deliveries(rb, webhook_id)
    assert [(d["event"], d["record_id"], d["status"], d["attempts"]) for d in queued] == [
        ("create", deal.id, "pending", 0), ("update", deal.id, "pending", 0), ("delete", deal.id, "pending", 0)]
    created, updated, deleted = (body_of(rb, d) for d in queued)
    assert (created["event"], created["app"], created["table"]) == ("create", APP, "deals")
    assert created["record"]["fields"]["amount"] == "700.00"
    assert updated["record"]["fields"]["amount"] == "750.00" and updated["record"]["version"] == 2
    # A delete carries the record as it was.
    assert deleted["record"]["id"] == deal.id and deleted["record"]["fields"]["name"] == "Fir"
    assert deleted["record"]["fields"]["phone"] == PHONES[1]  # system-owned: sees everything
    dt.datetime.fromisoformat(deleted["occurred_at"])


def test_only_the_events_asked_for_and_not_other_tables(rb):
    seed(rb)
    webhook_id, _ = hook_on_deals(rb, events=["delete"])
    deals = rb.records(SYSTEM, APP, "deals")
    deal = deals.create({"name": "Fir"})
    deals.update(deal.id, {"name": "Fir 2"}, version=deal.version)
    rb.records(SYSTEM, APP, "companies").create({"name": "Cedar Ltd"})
    assert deliveries(rb) == []
    deals.delete(deal.id)
    assert [d["event"] for d in deliveries(rb, webhook_id)] == ["delete"]


def test_bulk_create_and_import_queue_one_delivery_per_record(rb):
    seed(rb)
    hook_on_deals(rb, events=["create"])
    rb.records(SYSTEM, APP, "deals").create_many([{"name": f"Bulk {i}"} for i in range(30)])
    report = rb.records(SYSTEM, APP, "deals").import_rows([{"name": "Imported"}])
    assert report.committed
    assert len(deliveries(rb)) == 31


def test_cascaded_deletes_queue_deliveries_too(rb):
    rb.install(SHOP, SYSTEM)
    on_orders, _ = rb.create_webhook(SYSTEM, "shop", "orders", PUBLIC_URL, ["delete"])
    on_customers, _ = rb.create_webhook(SYSTEM, "shop", "customers", PUBLIC_URL, ["delete"])
    customer = rb.records(SYSTEM, "shop", "customers").create({"name": "Wang"})
    orders = rb.records(SYSTEM, "shop", "orders").create_many(
        [{"title": "first", "customer": customer.id}, {"title": "second", "customer": customer.id}])
    rb.records(SYSTEM, "shop", "customers").delete(customer.id)
    assert [(d["event"], d["record_id"]) for d in deliveries(rb, on_customers)] == [("delete", customer.id)]
    cascaded = deliveries(rb, on_orders)
    assert sorted(d["record_id"] for d in cascaded) == sorted(o.id for o in orders)
    assert sorted(body_of(rb, d)["record"]["fields"]["title"] for d in cascaded) == ["first", "second"]


def test_a_rolled_back_write_queues_nothing(rb):
    seed(rb)
    hook_on_deals(rb)
    deals = rb.records(SYSTEM, APP, "deals")
    with pytest.raises(RuntimeError), rb.write() as conn:
        deals._create([{"name": "Never"}], "/fields", conn=conn)
        # Written in the same transaction as the record...
        assert conn.execute(sa.select(sa.func.count()).select_from(d_t)).scalar_one() == 1
        raise RuntimeError("the transaction fails after the write")
    # ...so it is gone with it.
    assert deliveries(rb) == []
    # A refused write (a stale version) queues nothing either.
    deal = deals.create({"name": "Fir"})
    with pytest.raises(Exception, match="changed by someone else"):
        deals.update(deal.id, {"name": "x"}, version=99)
    assert [d["event"] for d in deliveries(rb)] == ["create"]


def test_the_body_is_the_owners_view_hidden_absent_masked_masked(rb):
    crm = seed(rb)
    rep_hook, _ = rb.create_webhook(crm["admin"], APP, "deals", PUBLIC_URL, owner_email="rep@example.com")
    viewer_hook, _ = rb.create_webhook(crm["admin"], APP, "deals", PUBLIC_URL, owner_email="viewer@example.com")
    manager_hook, _ = rb.create_webhook(crm["admin"], APP, "deals", PUBLIC_URL, owner_email="manager@example.com")
    deals = crm.deals()
    mine = deals.create({"name": "Rep's", "region": "east", "phone": PHONES[1], "notes": "secret plan",
                         "owner": crm.user_id("rep")})
    theirs = deals.create({"name": "West", "region": "west", "phone": PHONES[2], "owner": crm.user_id("other_rep")})

    rep = [body_of(rb, d) for d in deliveries(rb, rep_hook)]
    assert [b["record"]["id"] for b in rep] == [mine.id]  # only the rep's own rows
    fields = rep[0]["record"]["fields"]
    assert fields["phone"] != PHONES[1] and "****" in fields["phone"]  # masked, in the type's shape
    assert fields["notes"] == "secret plan"

    viewer = {b["record"]["id"]: b["record"]["fields"] for b in map(lambda d: body_of(rb, d), deliveries(rb, viewer_hook))}
    assert set(viewer) == {mine.id, theirs.id}
    assert all("notes" not in f for f in viewer.values())  # hidden: absent
    assert all("****" in f["phone"] for f in viewer.values())

    manager = [body_of(rb, d) for d in deliveries(rb, manager_hook)]
    assert [b["record"]["id"] for b in manager] == [mine.id]  # east only
    assert manager[0]["record"]["fields"]["phone"] == PHONES[1]  # clear for a personal clearance

    # At rest the bodies are sealed: no clear phone number in the table.
    with rb.read() as conn:
        stored = json.dumps([list(r) for r in conn.execute(sa.select(d_t.c.payload)).all()])
    assert PHONES[1] not in stored and "13812345678" not in stored and "secret plan" not in stored


def test_a_deactivated_owner_gets_nothing(rb):
    crm = seed(rb)
    hook, _ = rb.create_webhook(crm["admin"], APP, "deals", PUBLIC_URL, owner_email="viewer@example.com")
    rb.set_active(SYSTEM, "viewer@example.com", False)
    crm.deals().create({"name": "Quiet"})
    assert deliveries(rb, hook) == []


def test_erasing_a_records_history_strips_its_deliveries(rb, server):
    seed(rb)
    hook, secret = hook_on_deals(rb, url=server.url, allow_private=True)
    deals = rb.records(SYSTEM, APP, "deals")
    deal = deals.create({"name": "Gone", "phone": PHONES[3]})
    with rb.write() as conn:
        erase_for_good(deals, conn, [deal.id])
    stored = deliveries(rb, hook)
    assert [d["event"] for d in stored] == ["create", "delete"]
    assert all(d["payload"] == {"$erased": True} for d in stored)
    counts = webhooks.deliver_due(rb)
    assert counts.delivered == 2
    bodies = [json.loads(r.body) for r in server.received]
    assert [b["event"] for b in bodies] == ["create", "delete"]
    assert all(b["erased"] is True and b["record"] == {"id": deal.id, "fields": {}} for b in bodies)
    assert PHONES[3] not in b"".join(r.body for r in server.received).decode()


# --- delivering -------------------------------------------------------------------------------


def test_a_delivery_is_posted_signed_and_logged(rb, server):
    seed(rb)
    hook, secret = hook_on_deals(rb, url=server.url, allow_private=True)
    assert secret.startswith("whsec_")
    deal = rb.records(SYSTEM, APP, "deals").create({"name": "Signed"})
    counts = webhooks.deliver_due(rb)
    assert counts.as_dict() == {"delivered": 1, "retrying": 0, "failed": 0}
    [got] = server.received
    assert got.path == "/hook"
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-recordbase-event"] == "create"
    [delivery] = deliveries(rb, hook)
    assert headers["x-recordbase-delivery"] == str(delivery["id"])
    timestamp = headers["x-recordbase-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    # What a receiver does: HMAC-SHA256 over "<timestamp>.<body>" with the secret.
    import hashlib
    import hmac

    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-recordbase-signature"], expected)
    assert webhooks.verify_signature(secret, timestamp, got.body, headers["x-recordbase-signature"])
    assert not webhooks.verify_signature("whsec_wrong", timestamp, got.body, headers["x-recordbase-signature"])
    body = json.loads(got.body)
    assert (body["event"], body["record"]["id"], body["delivery_id"], body["webhook_id"]) == ("create", deal.id, delivery["id"], hook)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 200)
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None
    assert [d["status"] for d in rb.deliveries(hook)] == ["delivered"]
    assert webhooks.deliver_due(rb).attempted == 0  # nothing is sent twice


def test_a_failed_attempt_is_retried_with_backoff(rb, server):
    seed(rb)
    server.script = [500]
    hook, _ = hook_on_deals(rb, url=server.url, allow_private=True)
    rb.records(SYSTEM, APP, "deals").create({"name": "Retry"})
    t0 = utcnow()
    assert webhooks.deliver_due(rb, now=t0).as_dict() == {"delivered": 0, "retrying": 1, "failed": 0}
    [d] = deliveries(rb, hook)
    assert (d["status"], d["attempts"], d["last_status_code"], d["last_error"]) == ("pending", 1, 500, "HTTP 500")
    assert d["next_attempt_at"] == t0 + dt.timedelta(seconds=30)
    assert webhooks.deliver_due(rb, now=t0 + dt.timedelta(seconds=29)).attempted == 0  # not yet due
    assert webhooks.deliver_due(rb, now=t0 + dt.timedelta(seconds=31)).delivered == 1
    [d] = deliveries(rb, hook)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 2, 200)
    assert len(server.received) == 2
    # The same delivery id both times, so a receiver can tell a retry from a new event.
    assert server.received[0].headers["X-Recordbase-Delivery"] == server.received[1].headers["X-Recordbase-Delivery"]


def test_the_eighth_failure_is_final(rb, server):
    seed(rb)
    server.default = 503
    hook, _ = hook_on_deals(rb, url=server.url, allow_private=True)
    rb.records(SYSTEM, APP, "deals").create({"name": "Doomed"})
    now = utcnow()
    waits = []
    for _attempt in range(webhooks.MAX_ATTEMPTS):
        assert webhooks.deliver_due(rb, now=now).attempted == 1
        [d] = deliveries(rb, hook)
        if d["next_attempt_at"] is not None:
            waits.append((d["next_attempt_at"] - now).total_seconds())
            now = d["next_attempt_at"]
    assert waits == [30, 60, 120, 240, 480, 960, 1920]
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("failed", 8, 503)
    assert "gave up after 8 attempts" in d["last_error"]
    assert len(server.received) == 8
    assert webhooks.deliver_due(rb, now=now + dt.timedelta(days=1)).attempted == 0
    assert webhooks.backoff(20) == dt.timedelta(hours=6)  # capped


def test_an_unreachable_target_is_retried_and_deliver_due_never_raises(rb, server):
    seed(rb)
    port = server.port
    server.stop()
    hook, _ = hook_on_deals(rb, url=f"http://127.0.0.1:{port}/gone", allow_private=True)
    rb.records(SYSTEM, APP, "deals").create({"name": "Nobody home"})
    counts = webhooks.deliver_due(rb)
    assert counts.retrying == 1
    [d] = deliveries(rb, hook)
    assert d["status"] == "pending" and "Connection" in d["last_error"]
    server.start()  # so the fixture can stop it again


# --- refused addresses ------------------------------------------------------------------------


REFUSED = [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254",
    "0.0.0.0", "0.1.2.3", "100.64.0.1", "100.127.255.254", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "240.0.0.1", "192.0.2.1", "198.18.0.1", "192.0.0.8",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:8.8.8.8",
    "2002:7f00:1::1", "2002:a00:1::", "64:ff9b::a00:1", "64:ff9b::7f00:1",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "100.128.0.1", "2606:4700:4700::1111", "2001:4860:4860::8888", "2002:808:808::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_addresses_are_refused(address):
    assert webhooks.address_problem(address) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert webhooks.address_problem(address) is None


def test_the_refusal_names_the_kind_of_address():
    assert "loopback" in webhooks.address_problem("127.0.0.1")
    assert "link-local" in webhooks.address_problem("169.254.169.254")
    assert "private" in webhooks.address_problem("192.168.0.1")
    assert "IPv4-mapped" in webhooks.address_problem("::ffff:127.0.0.1")
    assert "carrier-grade NAT" in webhooks.address_problem("100.64.0.1")


def test_every_resolved_address_must_be_public():
    resolve = resolver_for({"mixed.example": ["8.8.8.8", "10.0.0.7"], "good.example": ["8.8.8.8", "1.1.1.1"]})
    assert webhooks.checked_addresses("good.example", 443, allow_private=False, resolver=resolve) == ["8.8.8.8", "1.1.1.1"]
    with pytest.raises(webhooks.UnsafeTarget, match="mixed.example resolves to 10.0.0.7: 10.0.0.7 is a private address"):
        webhooks.checked_addresses("mixed.example", 443, allow_private=False, resolver=resolve)
    assert webhooks.checked_addresses("mixed.example", 443, allow_private=True, resolver=resolve) == ["8.8.8.8", "10.0.0.7"]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::ffff:127.0.0.1", "::1"])
def test_a_delivery_to_a_private_address_fails_and_sends_nothing(rb, server, address):
    seed(rb)
    # A name that resolves to a private address at delivery time (DNS can change after creation).
    hook, _ = hook_on_deals(rb, url=f"http://hooks.example.test:{server.port}/hook")
    rb.records(SYSTEM, APP, "deals").create({"name": "Refused"})
    counts = webhooks.deliver_due(rb, resolver=resolver_for({"hooks.example.test": [address]}))
    assert counts.as_dict() == {"delivered": 0, "retrying": 0, "failed": 1}
    [d] = deliveries(rb, hook)
    assert d["status"] == "failed" and d["attempts"] == 1 and d["last_status_code"] is None
    assert d["last_error"].startswith(f"refused: hooks.example.test resolves to {address}:")
    assert "may not reach private addresses" in d["last_error"]
    assert server.received == []


def test_the_real_resolver_and_a_webhook_no_longer_allowed_private(rb, server):
    seed(rb)
    hook, _ = hook_on_deals(rb, url=server.url, allow_private=True)
    with rb.write() as conn:  # as if an administrator took the permission back
        conn.execute(sa.update(webhooks.webhooks_t).values(allow_private=False))
    rb.records(SYSTEM, APP, "deals").create({"name": "Refused"})
    assert webhooks.deliver_due(rb).failed == 1
    [d] = deliveries(rb, hook)
    assert d["last_error"] == (
        "refused: 127.0.0.1 is a loopback address, and this webhook may not reach private addresses")
    assert server.received == []


def test_the_connection_goes_to_the_checked_address_with_the_original_host(rb, server):
    """Resolved once, connected to that address: the Host header keeps the name (no second lookup)."""
    lookups = []

    def resolve(host, port):
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.9.9.9"]  # a rebinding DNS

    response = webhooks.post(f"http://pinned.example.test:{server.port}/p?x=1", b"{}", {"Content-Type": "application/json"},
                             allow_private=True, resolver=resolve)
    assert response.status == 200 and lookups == ["pinned.example.test"]
    [got] = server.received
    assert got.headers["Host"] == f"pinned.example.test:{server.port}" and got.path == "/p?x=1"


def test_a_redirect_to_a_private_address_is_refused(server):
    """Every hop is checked: the first server (treated as public here) redirects to a loopback one."""
    second = LocalServer(host="127.0.0.2").start()
    try:
        server.script = [307]
        server.location = f"http://127.0.0.2:{second.port}/internal"
        treat_first_as_public = lambda ip: None if ip == "127.0.0.1" else webhooks.address_problem(ip)  # noqa: E731
        with pytest.raises(webhooks.UnsafeTarget, match=r"127\.0\.0\.2 is a loopback address"):
            webhooks.post(server.url, b"{}", {}, check=treat_first_as_public)
        assert len(server.received) == 1 and second.received == []
        # The same redirect, with the second hop allowed, is followed (re-POSTing the body).
        server.script = [307]
        assert webhooks.post(server.url, b'{"a":1}', {}, check=lambda ip: None).status == 200
        assert [r.body for r in second.received] == [b'{"a":1}'] and second.received[0].path == "/internal"
    finally:
        second.stop()


def test_a_redirect_by_name_is_resolved_and_checked_again():
    calls = []

    def resolve(host, port):
        calls.append(host)
        return {"first.example": ["8.8.8.8"], "inside.example": ["192.168.0.10"]}[host]

    with pytest.raises(webhooks.UnsafeTarget, match="inside.example resolves to 192.168.0.10"):
        webhooks.checked_addresses("inside.example", 80, allow_private=False, resolver=resolve)
    assert calls == ["inside.example"]


def test_too_many_redirects_fail(server):
    server.default = 302
    server.location = "/again"
    with pytest.raises(OSError, match="more than 3 redirects"):
        webhooks.post(server.url, b"{}", {}, allow_private=True)
    assert len(server.received) == 4


# --- who may create what ----------------------------------------------------------------------


def manage_definition() -> dict[str, Any]:
    grants = json.loads(json.dumps(DEALS_PERMISSIONS))
    grants["manager"]["manage"] = True
    return crm_definition(deals_permissions=grants)


def test_only_managers_make_webhooks_and_only_admins_allow_private(rb):
    rb.install(manage_definition(), SYSTEM)
    manager = make_user(rb, "manager@example.com", ["manager"], region="east")
    rep = make_user(rb, "rep@example.com", ["rep"])
    stranger = make_user(rb, "stranger@example.com")
    admin = make_user(rb, "admin@example.com", is_admin=True)

    with pytest.raises(PermissionDenied):
        rb.create_webhook(rep, APP, "deals", PUBLIC_URL)  # no manage
    with pytest.raises(NotFound):
        rb.create_webhook(stranger, APP, "deals", PUBLIC_URL)
    with pytest.raises(PermissionDenied, match="only an administrator"):
        rb.create_webhook(manager, APP, "deals", "http://10.0.0.5/hook", allow_private=True)
    with pytest.raises(PermissionDenied, match="another owner"):
        rb.create_webhook(manager, APP, "deals", PUBLIC_URL, owner_email="admin@example.com")

    hook, _ = rb.create_webhook(manager, APP, "deals", PUBLIC_URL, ["create"])
    [listed] = rb.list_webhooks(APP)
    assert (listed["id"], listed["owner"], listed["events"], listed["allow_private"]) == (hook, "manager@example.com", ["create"], False)
    assert "secret" not in listed

    private, _ = rb.create_webhook(admin, APP, "deals", "http://10.0.0.5/hook", allow_private=True)
    assert {w["id"]: w["owner"] for w in rb.list_webhooks()} == {hook: "manager@example.com", private: "admin@example.com"}

    with pytest.raises(NotFound):
        rb.delete_webhook(rep, hook)
    rb.delete_webhook(manager, hook)
    assert [w["id"] for w in rb.list_webhooks()] == [private]


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/x", "http:// or https://"),
    ("http:///nohost", "no host"),
    ("https://user:pass@example.com/", "user name or password"),
    ("http://127.0.0.1:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://localhost:5000/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
])
def test_bad_urls_are_refused_when_created(rb, url, message):
    seed(rb)
    with pytest.raises(ValidationError, match=message):
        hook_on_deals(rb, url=url)


def test_bad_events_and_tables(rb):
    seed(rb)
    with pytest.raises(ValidationError, match='unknown event "upsert"'):
        hook_on_deals(rb, events=["upsert"])
    with pytest.raises(NotFound):
        rb.create_webhook(SYSTEM, APP, "nope", PUBLIC_URL)
    with pytest.raises(ValidationError, match="may not read"):
        rb.create_webhook(SYSTEM, APP, "deals", PUBLIC_URL, owner_email="stranger@example.com")


def test_creating_and_removing_are_audited_without_the_secret(rb):
    seed(rb)
    hook, secret = hook_on_deals(rb)
    rb.delete_webhook(SYSTEM, hook)
    entries = [e for e in rb.audit_entries(limit=100_000) if e["action"].startswith("webhook_")]
    assert [e["action"] for e in entries] == ["webhook_create", "webhook_delete"]
    assert entries[0]["changes"]["url"] == PUBLIC_URL and entries[0]["changes"]["webhook_id"] == hook
    assert secret not in json.dumps([e["changes"] for e in entries])
    with rb.read() as conn:
        assert secret not in json.dumps([list(r) for r in conn.execute(sa.select(webhooks.webhooks_t)).all()], default=str)
    assert rb.verify_audit()[1] is None


def test_a_delivery_worker_thread(rb, server):
    seed(rb)
    hook_on_deals(rb, url=server.url, allow_private=True)
    worker = webhooks.DeliveryWorker(rb, interval=0.05).start()
    try:
        rb.records(SYSTEM, APP, "deals").create({"name": "Background"})
        deadline = time.monotonic() + 10
        while not server.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert len(server.received) == 1
    assert json.loads(server.received[0].body)["record"]["fields"]["name"] == "Background"


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_cli_add_list_deliver_deliveries_remove(cli, engine, server):
    engine.install(crm_definition(), SYSTEM)
    refused = cli("webhooks", "add", APP, "deals", server.url)
    assert refused.code == 1 and "loopback" in refused.err[-1]

    added = cli("webhooks", "add", APP, "deals", server.url, "--allow-private", "--event", "create", "--event", "delete")
    assert added.code == 0, added.err
    [secret] = added.out
    assert secret.startswith("whsec_") and "not shown again" in added.err[-1]
    hook = int(added.err[-1].split()[1])

    listed = cli("webhooks", "list")
    assert listed.code == 0 and len(listed.out) == 1
    assert listed.out[0].split("\t")[:6] == [str(hook), "crm.deals", server.url, "create,delete", "system", "private-ok"]
    assert secret not in "\n".join(listed.out)

    engine.records(SYSTEM, APP, "deals").create({"name": "From the CLI"})
    sent = cli("webhooks", "deliver")
    assert sent.code == 0 and sent.out == ["delivered 1, to retry 0, failed 0"]
    [got] = server.received
    assert webhooks.verify_signature(secret, got.headers["X-Recordbase-Timestamp"], got.body, got.headers["X-Recordbase-Signature"])

    log = cli("webhooks", "deliveries", str(hook))
    assert log.code == 0 and log.out[0].split("\t")[1:6] == ["create", "1", "delivered", "1", "200"]
    assert cli("webhooks", "deliveries", "999").code == 1

    assert cli("webhooks", "remove", str(hook)).out == [f"webhook {hook} removed"]
    assert cli("webhooks", "list").out == []


def test_prune_drops_old_finished_deliveries(rb, server):
    seed(rb)
    hook, _ = hook_on_deals(rb, url=server.url, allow_private=True)
    deals = rb.records(SYSTEM, APP, "deals")
    deals.create({"name": "Old"})
    webhooks.deliver_due(rb)
    deals.create({"name": "Waiting"})
    assert webhooks.prune(rb, days=30) == 0
    assert webhooks.prune(rb, days=30, now=utcnow() + dt.timedelta(days=31)) == 1
    assert [d["status"] for d in deliveries(rb, hook)] == ["pending"]


def test_the_served_app_delivers_webhooks_in_the_background(tmp_path, instance, database_url, engine, server):
    """`recordbase serve` on 127.0.0.1: a change made meanwhile reaches the hook without a cron job."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from conftest import clean_env, pg_bin

    engine.install(crm_definition(), SYSTEM)
    engine.create_webhook(SYSTEM, APP, "deals", server.url, allow_private=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = clean_env(instance_path=str(instance), database_url=database_url, pg_bin=pg_bin())
    process = subprocess.Popen([sys.executable, "-m", "recordbase.cli", "serve", "--port", str(port)],
                               env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        engine.records(SYSTEM, APP, "deals").create({"name": "Served"})
        while not server.received and time.monotonic() < deadline:
            time.sleep(0.2)
        [got] = server.received
        assert json.loads(got.body)["record"]["fields"]["name"] == "Served"
    finally:
        process.terminate()
        process.wait(10)


def test_a_sender_whose_lease_ran_out_does_not_send_what_another_took(rb, server):
    seed(rb)
    hook_on_deals(rb, url=server.url, allow_private=True)
    rb.records(SYSTEM, APP, "deals").create({"name": "Leased", "phone": PHONES[2]})
    now = utcnow()
    first = webhooks._claim(rb, now, 10)  # worker A takes it, then stalls past its lease
    assert len(first) == 1
    later = now + webhooks.LEASE + dt.timedelta(seconds=1)
    counts = webhooks.deliver_due(rb, now=later)  # worker B takes it over and sends it
    assert counts.delivered == 1
    assert webhooks._renew(rb, first[0]) is False  # A's renewal fails: it sends nothing
    assert len(server.received) == 1
