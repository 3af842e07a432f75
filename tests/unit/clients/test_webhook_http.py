"""One webhook POST against a real aiohttp server on 127.0.0.1: what is transient, what is permanent, and that
a hostile reply is read only up to a bound, within the timeout, and never echoes the URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from helm_e2e.clients import webhook_http
from helm_e2e.core.outcomes.outbox import Target, TargetType
from helm_e2e.core.outcomes.webhook_payloads import WebhookRequest
from helm_e2e.errors import NotifyError
from webhook_receiver import Receiver

REQUEST = WebhookRequest(headers={"content-type": "application/json"}, body=b'{"text":"hi"}')


@pytest.fixture
async def receiver(unused_tcp_port: int) -> AsyncIterator[Receiver]:
    r = await Receiver(port=unused_tcp_port).start()
    yield r
    await r.stop()


def target(url: str) -> Target:
    return Target("ops", TargetType.SLACK, url)


async def test_a_2xx_is_delivered_with_the_body_byte_for_byte(receiver: Receiver) -> None:
    assert await webhook_http.post_webhook(target(receiver.url()), REQUEST, timeout_seconds=5) == 200
    (delivery,) = receiver.deliveries
    assert (delivery.path, delivery.body) == ("/hook", REQUEST.body)


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (503, False), (429, False), (408, False)])
async def test_server_errors_and_throttling_are_transient(
    receiver: Receiver, status: int, permanent: bool
) -> None:
    receiver.answers = [(status, b"busy")]
    with pytest.raises(NotifyError) as e:
        await webhook_http.post_webhook(target(receiver.url()), REQUEST, timeout_seconds=5)
    assert e.value.permanent is permanent
    assert f"answered {status}: busy" in str(e.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 302])
async def test_other_answers_are_permanent_and_redirects_are_not_followed(
    receiver: Receiver, status: int
) -> None:
    receiver.answers = [(status, b"no")]
    with pytest.raises(NotifyError) as e:
        await webhook_http.post_webhook(target(receiver.url()), REQUEST, timeout_seconds=5)
    assert e.value.permanent
    assert len(receiver.deliveries) == 1  # not to the Location


async def test_a_huge_hostile_reply_is_cut_to_a_short_printable_excerpt(receiver: Receiver) -> None:
    receiver.answers = [(500, b"\x1b[31m<script>\r\n" + b"A" * 5_000_000)]
    with pytest.raises(NotifyError) as e:
        await webhook_http.post_webhook(target(receiver.url()), REQUEST, timeout_seconds=5)
    message = str(e.value)
    assert len(message) < 200
    assert "\x1b" not in message
    assert "\n" not in message


async def test_a_receiver_that_does_not_listen_is_transient_and_the_url_is_not_in_the_error(
    unused_tcp_port: int,
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/services/T0KEN"
    with pytest.raises(NotifyError) as e:
        await webhook_http.post_webhook(target(url), REQUEST, timeout_seconds=5)
    assert not e.value.permanent
    assert "T0KEN" not in str(e.value)
    assert str(unused_tcp_port) not in str(e.value)


async def test_a_receiver_that_never_answers_times_out_transiently(receiver: Receiver) -> None:
    receiver.delay_seconds = 1.5
    with pytest.raises(NotifyError) as e:
        await webhook_http.post_webhook(target(receiver.url()), REQUEST, timeout_seconds=0.3)
    assert not e.value.permanent
    assert "Timeout" in str(e.value)


@pytest.mark.parametrize(
    ("status", "expected"), [(200, None), (204, None), (301, True), (404, True), (429, False), (502, False)]
)
def test_classify_status(status: int, expected: bool | None) -> None:
    assert webhook_http.classify_status(status) is expected
