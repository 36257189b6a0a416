"""Signed webhook POSTs to a real local receiver, through the SSRF-guarded client.

The receiver runs on 127.0.0.1; the tests allow-list 127.0.0.0/8 as the demo
does, and give the receiver a made-up name through an injected resolver, so
that the connection goes to the checked address while the request keeps its
own Host.  Every received message is verified with the Standard Webhooks
reference library.
"""

from __future__ import annotations

import copy
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
import trustme
from standardwebhooks import Webhook

from domain.contract import ServiceContract
from domain.directives import DirectiveFields
from domain.terms import ContractTerms
from domain.webhooks import Message, message_body, messages_for
from workflows.webhooks.retries import Outcome, classify, next_attempt_at, parse_retry_after
from workflows.webhooks.signing import secret_from_bytes, sign
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import (
    DELIVERY_TIMEOUT_SECONDS,
    AttemptResult,
    WebhookClient,
    post_message,
)

from .webhook_receiver import Answer, Receiver

SECRET = secret_from_bytes(bytes(range(7, 39)))
LOOPBACK = parse_allowed_cidrs("127.0.0.0/8")
RECEIVER_NAME = "receiver.haichuang.test"
MESSAGE = Message("conflict.opened", {
    "contract_id": "5c1e0c4e-6f53-5d43-a2b1-0f4b1f7c9e10", "contract_version": 12,
    "id": "b3f3acfa-e960-54e3-b507-6706472e8bf9", "kind": "contradiction",
    "explanation": "海幢街要求开到晚上九点；赤岗街要求五点半关门"})
# The Haizhu youth contract, in brief, and 海幢街's weekly report directive.
HAIZHU = ContractTerms.model_validate({
    "code": "HZ-YOUTH-2008", "title": "海珠区“青年地带”青少年社会工作服务",
    "purchaser": "haizhu-gov", "provider": "qichuang",
    "budget": {"amount": "2000000.00", "currency": "CNY"},
    "period": {"start": "2008-03-03", "end": "2009-03-01"},
    "service_area": ["海幢街"], "target_groups": ["youth"],
    "capacity": {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400},
    "stakeholders": [{"org": "haichuang-street", "standing": "party"}],
})
WEEKLY_REPORT = DirectiveFields.model_validate({
    "subject": "reporting.weekly", "value": {"format": "street-template-v2"},
    "summary": "每周按街道模板报送工作数据", "basis": "purchaser_request",
    "hours_per_week": 20, "people_affected": 0})
ADMIN = {"org": "threadneedle", "principal": "admin-key"}
STREET = {"org": "haichuang-street", "principal": "haichuang-street-key"}
CONTRACT_ID = UUID("5c1e0c4e-6f53-5d43-a2b1-0f4b1f7c9e10")
WEEKLY_ID = UUID("9763cd86-66bc-5d68-9154-fde0f7b7ab9c")
GUANGZHOU_MORNING = datetime(2008, 6, 2, 1, 0, tzinfo=UTC)  # 09:00 in Guangzhou

BODY = message_body(MESSAGE, sequence=1, timestamp=datetime(2008, 6, 2, 1, 0, tzinfo=UTC))


def names(table: dict[str, list[str]]) -> Callable[[str, int], Iterable[str]]:
    def resolve(host: str, port: int) -> Iterable[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]
    return resolve


TO_LOOPBACK = names({RECEIVER_NAME: ["127.0.0.1"], "intranet.test": ["10.20.30.40"]})


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """A receiver scripted by ``@pytest.mark.parametrize("receiver", [[Answer...]], indirect)``."""
    answers = getattr(request, "param", [Answer(204)])
    with Receiver(answers).running() as running:
        yield running


def deliver(url: str, *, allowed: bool = True, timeout: float = DELIVERY_TIMEOUT_SECONDS,
            msg_id: str = "msg_0001") -> AttemptResult:
    headers = sign([SECRET], msg_id, int(time.time()), BODY)
    with WebhookClient(LOOPBACK if allowed else (), TO_LOOPBACK, timeout=timeout) as client:
        return post_message(client, url, BODY, headers)


def test_an_allow_listed_receiver_gets_a_signed_post_that_verifies(receiver: Receiver) -> None:
    # When a message is delivered to the receiver by its name
    result = deliver(receiver.url(host=RECEIVER_NAME))

    # Then the attempt succeeded
    assert (result.status_code, result.error) == (204, None)
    assert classify(result.status_code, result.error).outcome is Outcome.DELIVERED

    # And the receiver got one JSON POST that the reference library verifies
    [got] = receiver.received
    assert (got.method, got.path) == ("POST", "/hook")
    assert got.headers["content-type"] == "application/json"
    payload = Webhook(SECRET).verify(got.body, got.headers)
    assert payload["type"] == "conflict.opened"
    assert payload["data"]["sequence"] == 1
    assert payload["data"]["explanation"] == "海幢街要求开到晚上九点；赤岗街要求五点半关门"
    assert got.headers["webhook-id"] == "msg_0001"

    # And the connection went to the checked address while the Host stayed the name
    assert got.headers["host"] == f"{RECEIVER_NAME}:{receiver.port}"


def test_a_loopback_receiver_that_is_not_allow_listed_is_never_called(
    receiver: Receiver,
) -> None:
    # When the operator allow-lists nothing
    result = deliver(receiver.url(), allowed=False)

    # Then the attempt is refused before connecting, and will be retried on schedule
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("refused:")
    assert "loopback" in result.error
    assert receiver.received == []
    assert classify(result.status_code, result.error).outcome is Outcome.RETRY


def test_a_hostname_resolving_to_a_private_address_is_refused_even_when_loopback_is_allowed(
) -> None:
    result = deliver("http://intranet.test/hook")
    assert result.error is not None
    assert "intranet.test" in result.error and "private" in result.error
    # the delivery log, which the subscriber reads, does not show the server's DNS answer
    assert "10.20.30.40" not in result.error


@pytest.mark.parametrize("receiver", [[Answer(302, {"location": "/elsewhere"})]], indirect=True)
def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    result = deliver(receiver.url())

    assert result.status_code == 302
    assert classify(result.status_code).reason == "redirect 302 not followed"
    assert [got.path for got in receiver.received] == ["/hook"]


@pytest.mark.parametrize("receiver", [[Answer(410)]], indirect=True)
def test_410_asks_for_the_endpoint_to_be_disabled(receiver: Receiver) -> None:
    result = deliver(receiver.url())
    assert classify(result.status_code).outcome is Outcome.DISABLE


@pytest.mark.parametrize("receiver", [[Answer(429, {"retry-after": "7"}, b"slow down")]],
                         indirect=True)
def test_a_throttled_attempt_keeps_retry_after_for_the_next_attempt(receiver: Receiver) -> None:
    # When the receiver answers 429 with Retry-After: 7
    result = deliver(receiver.url())
    failed_at = datetime.now(UTC)

    # Then the attempt records it, and the next attempt waits at least 7 s (schedule: 1 s)
    assert (result.status_code, result.retry_after, result.response) == (429, "7", "slow down")
    verdict = classify(result.status_code)
    assert verdict.honours_retry_after
    wait = parse_retry_after(result.retry_after, failed_at)
    next_at = next_attempt_at(1, failed_at, (1.0,), random=lambda: 0.5, retry_after=wait)
    assert next_at is not None and (next_at - failed_at).total_seconds() == 7


@pytest.mark.parametrize("receiver", [[Answer(500, body="错".encode() * 2000)]], indirect=True)
def test_only_the_first_kib_of_the_response_is_kept(receiver: Receiver) -> None:
    result = deliver(receiver.url())

    assert result.status_code == 500
    # 1,024 bytes of three-byte characters: 341 whole ones and a replaced partial one
    assert result.response.startswith("错" * 341)
    assert len(result.response.encode("utf-8", errors="replace")) <= 1024 + 3


@pytest.mark.parametrize("receiver", [[Answer(204, delay=1.5)]], indirect=True)
def test_a_receiver_slower_than_the_timeout_is_a_timeout(receiver: Receiver) -> None:
    # Given a client whose timeout is compressed from 15 s to 0.3 s
    result = deliver(receiver.url(), timeout=0.3)

    # Then the attempt times out after about the timeout, and will be retried
    assert (result.status_code, result.error) == (None, "timeout")
    assert 250 <= result.duration_ms < 1400
    assert classify(result.status_code, result.error).outcome is Outcome.RETRY


def test_a_closed_port_is_a_failed_connection() -> None:
    # Given a port that nothing listens on (a receiver started and stopped)
    with Receiver([Answer()]).running() as gone:
        url = gone.url()
    result = deliver(url)

    assert result.status_code is None
    assert result.error is not None and result.error.startswith("NewConnectionError: ")
    assert "Connection refused" in result.error
    assert classify(result.status_code, result.error).outcome is Outcome.RETRY


def test_the_client_gives_a_whole_attempt_15_seconds() -> None:
    with WebhookClient(LOOPBACK) as client:
        assert client.timeout_seconds == DELIVERY_TIMEOUT_SECONDS == 15.0


@pytest.mark.parametrize(("receiver", "phase"), [
    # one byte every 0.4 s: every read gets a byte long before the timeout, and the
    # status line and headers alone would take ~25 s
    ([Answer(200, body=b"ok", trickle=0.4)], "headers"),
    # the head in ~0.5 s, then a body of 3,000 bytes at 100 a second (30 s)
    ([Answer(200, body="已收到".encode() * 1000, trickle=0.01)], "body"),
], indirect=["receiver"])
def test_a_receiver_that_trickles_its_answer_holds_an_attempt_no_longer_than_the_timeout(
    receiver: Receiver, phase: str,
) -> None:
    # Given a client whose timeout is compressed from 15 s to 1.5 s, and a receiver that
    # keeps each read alive with a byte at a time (issue 11: 150 s with a 15 s timeout)
    started = time.monotonic()
    result = deliver(receiver.url(), timeout=1.5)
    took = time.monotonic() - started

    # Then the attempt as a whole ends at the timeout: a timeout, to be retried, even
    # though the answer had begun (a 200 status line that never completes is no success)
    assert (result.status_code, result.error) == (None, "timeout"), phase
    assert 1.4 <= took < 4.0, (phase, took)
    assert classify(result.status_code, result.error).outcome is Outcome.RETRY


def test_a_name_whose_dns_answer_hangs_holds_an_attempt_no_longer_than_the_timeout(
    receiver: Receiver,
) -> None:
    # Given a resolver that answers the receiver's name only after 8 s (a hung DNS server)
    def slow_dns(host: str, port: int) -> list[str]:
        time.sleep(8)
        return ["127.0.0.1"]

    started = time.monotonic()
    with WebhookClient(LOOPBACK, slow_dns, timeout=1.0) as client:
        result = post_message(client, receiver.url(host=RECEIVER_NAME), b"{}", {})
    took = time.monotonic() - started

    # Then the attempt ends at its deadline, a timeout to retry, and nothing was sent
    assert (result.status_code, result.error) == (None, "timeout")
    assert took < 3.0, took
    assert receiver.received == []


def test_a_client_whose_attempts_were_cut_off_still_delivers_to_a_prompt_receiver() -> None:
    # Given attempts cut off by the deadline on one thread (their connections closed) ...
    with Receiver([Answer(200, trickle=0.5)]).running() as slow, \
            Receiver([Answer(204)], keep_alive=True).running() as prompt, \
            WebhookClient(LOOPBACK, TO_LOOPBACK, timeout=1.0) as client:
        cut = [post_message(client, slow.url(), b"{}", {}) for _ in range(2)]
        # ... later attempts of the same client, on the same thread, run in full
        answered = [post_message(client, prompt.url(), b"{}", {}) for _ in range(3)]

    assert [r.error for r in cut] == ["timeout", "timeout"]
    assert [(r.status_code, r.error) for r in answered] == [(204, None)] * 3


def test_an_issued_directive_reaches_the_receiver_signed_by_both_secrets_during_a_rotation(
    receiver: Receiver,
) -> None:
    # Given the Haizhu contract, and 海幢街 issuing a directive on it
    contract = ServiceContract.draft(contract_id=CONTRACT_ID, terms=HAIZHU, actor=ADMIN,
                                     at=datetime(2008, 2, 25, tzinfo=UTC))
    contract.transition("activate", actor=ADMIN, at=datetime(2008, 3, 3, tzinfo=UTC))
    contract.collect_events()
    before = copy.deepcopy(contract)
    contract.issue_directive(WEEKLY_REPORT, directive_id=WEEKLY_ID, issuer="haichuang-street",
                             actor=STREET, at=GUANGZHOU_MORNING)
    [event] = contract.collect_events()
    [message] = messages_for(event, before, contract)
    body = message_body(message, sequence=1, timestamp=event.timestamp)

    # When it is delivered while the endpoint rotates from the old secret to a new one
    new_secret = secret_from_bytes(bytes(range(50, 82)))
    headers = sign([new_secret, SECRET], "msg_weekly", int(time.time()), body)
    with WebhookClient(LOOPBACK, TO_LOOPBACK) as client:
        result = post_message(client, receiver.url(host=RECEIVER_NAME), body, headers)

    # Then a receiver holding either secret verifies the very bytes it received
    assert result.status_code == 204
    [got] = receiver.received
    for secret in (SECRET, new_secret):
        payload = Webhook(secret).verify(got.body, got.headers)
        assert payload["type"] == "directive.issued"
        assert payload["data"]["id"] == str(WEEKLY_ID)
        assert payload["data"]["contract_id"] == str(CONTRACT_ID)
        assert payload["data"]["summary"] == "每周按街道模板报送工作数据"
        assert payload["data"]["sequence"] == 1


# --- TLS, IPv6, pools and cookies: what reaches the network --------------------------

HOOKS, MIRROR = "hooks.haizhu.test", "mirror.haizhu.test"
TO_LOOPBACK_TOO = names({HOOKS: ["127.0.0.1"], MIRROR: ["127.0.0.1"], "v6.haizhu.test": ["::1"]})
LOOPBACKS = parse_allowed_cidrs("127.0.0.0/8,::1/128")


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_receiver(authority: trustme.CA, *names_on_certificate: str) -> Receiver:
    """A keep-alive HTTPS receiver on 127.0.0.1 whose certificate names only ``names``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names_on_certificate).configure_cert(context)
    return Receiver([Answer(204)], tls=context, keep_alive=True)


def trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


def signed_post(client: WebhookClient, url: str, msg_id: str = "msg_tls") -> AttemptResult:
    headers = sign([SECRET], msg_id, int(time.time()), BODY)
    return post_message(client, url, BODY, headers)


def test_an_https_receiver_is_reached_at_the_checked_address_by_its_name(
    authority: trustme.CA,
) -> None:
    # Given an HTTPS receiver on 127.0.0.1 whose certificate names only hooks.haizhu.test
    with tls_receiver(authority, HOOKS).running() as receiver, \
            WebhookClient(LOOPBACK, TO_LOOPBACK_TOO, ssl_context=trusting(authority)) as client:
        # When a message is sent to that name
        result = signed_post(client, receiver.url(host=HOOKS))

    # Then TLS was asked for the name (SNI) and the certificate checked against it,
    # while the connection went to the checked address
    assert (result.status_code, result.error) == (204, None)
    assert receiver.server_names == [HOOKS]
    [got] = receiver.received
    assert got.headers["host"] == f"{HOOKS}:{receiver.port}"
    assert Webhook(SECRET).verify(got.body, got.headers)["data"]["explanation"] == \
        "海幢街要求开到晚上九点；赤岗街要求五点半关门"


def test_a_certificate_for_another_name_is_refused(authority: trustme.CA) -> None:
    with tls_receiver(authority, MIRROR).running() as receiver, \
            WebhookClient(LOOPBACK, TO_LOOPBACK_TOO, ssl_context=trusting(authority)) as client:
        result = signed_post(client, receiver.url(host=HOOKS))

    assert result.status_code is None
    assert result.error is not None and result.error.startswith("SSLError")
    assert f"hostname '{HOOKS}' doesn't match '{MIRROR}'" in result.error
    assert receiver.received == []
    assert classify(result.status_code, result.error).outcome is Outcome.RETRY


def test_a_tls_connection_is_never_reused_for_another_name_on_the_same_address(
    authority: trustme.CA,
) -> None:
    # Given two names on one address, a keep-alive receiver certified for one of them
    with tls_receiver(authority, HOOKS).running() as receiver, \
            WebhookClient(LOOPBACK, TO_LOOPBACK_TOO, ssl_context=trusting(authority)) as client:
        # When the certified name is sent to, then the other, then the certified one again
        first = signed_post(client, receiver.url(host=HOOKS), "msg_1")
        other = signed_post(client, receiver.url(host=MIRROR), "msg_2")
        again = signed_post(client, receiver.url(host=HOOKS), "msg_3")

    # Then the other name got a handshake of its own, which its certificate failed,
    # and the certified name's connection was kept alive and reused
    assert (first.status_code, again.status_code) == (204, 204)
    assert other.status_code is None and other.error is not None
    assert other.error.startswith("SSLError")
    assert receiver.server_names == [HOOKS, MIRROR]
    assert [got.headers["webhook-id"] for got in receiver.received] == ["msg_1", "msg_3"]


def test_an_ipv6_receiver_is_reached_by_name_and_by_literal_address() -> None:
    with Receiver([Answer(204)], bind="::1").running() as receiver, \
            WebhookClient(LOOPBACKS, TO_LOOPBACK_TOO) as client:
        by_name = signed_post(client, receiver.url(host="v6.haizhu.test"), "msg_name")
        by_address = signed_post(client, receiver.url(host="[::1]"), "msg_literal")

    assert (by_name.status_code, by_address.status_code) == (204, 204)
    assert [got.headers["host"] for got in receiver.received] == [
        f"v6.haizhu.test:{receiver.port}", f"[::1]:{receiver.port}"]


def test_a_cookie_an_endpoint_sets_is_never_sent_back() -> None:
    # Given a keep-alive endpoint that sets a cookie on every answer
    answer = Answer(204, {"set-cookie": "session=haizhu-1; Path=/"})
    with Receiver([answer], keep_alive=True).running() as receiver, \
            WebhookClient(LOOPBACK, TO_LOOPBACK_TOO) as client:
        # When it, and another subscription's endpoint on the same host, are sent to
        for number, host in enumerate((HOOKS, HOOKS, MIRROR)):
            assert signed_post(client, receiver.url(host=host), f"msg_{number}").status_code == 204

    # Then no delivery carried a cookie
    assert [got.headers.get("cookie") for got in receiver.received] == [None, None, None]
