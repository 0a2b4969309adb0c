"""The Runtime API's state machine over raw HTTP, with the codes and bodies RAPID gives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson

from skylift.engine.instance import MAX_RESPONSE
from skylift.runtimeapi import Invocation, Outcome, RuntimeApiServer

V = "/2018-06-01/runtime"


def invocation(
    request_id: str = "req-1",
    *,
    client_context: str | None = None,
    cognito_identity: str | None = None,
) -> Invocation:
    return Invocation(
        request_id=request_id,
        event=b'{"k": "v"}',
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        timeout=3.0,
        trace_id="Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        client_context=client_context,
        cognito_identity=cognito_identity,
    )


@asynccontextmanager
async def api() -> AsyncIterator[tuple[RuntimeApiServer, httpx.AsyncClient]]:
    server = await RuntimeApiServer.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://{server.address}") as client:
            yield server, client
    finally:
        server.close()


def not_allowed(source: str, target: str) -> dict[str, str]:
    return {
        "errorMessage": f"State transition from {source} to {target} failed for runtime. "
        "Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }


def test_next_long_polls_until_an_invocation_and_carries_its_headers(run):
    async def scenario():
        async with api() as (server, client):
            poll = asyncio.ensure_future(client.get(f"{V}/invocation/next"))
            await asyncio.sleep(0.1)
            assert not poll.done()  # nothing queued yet: the runtime waits
            job = server.submit(
                invocation(
                    client_context='{"custom":{"a":1}}',
                    cognito_identity='{"cognitoIdentityId":"i"}',
                )
            )
            response = await poll
            return response, job, time.time()

    response, job, now = run(scenario())
    assert response.status_code == 200
    assert response.content == b'{"k": "v"}'
    headers = response.headers
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:fn")
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert headers["Lambda-Runtime-Client-Context"] == '{"custom":{"a":1}}'
    assert headers["Lambda-Runtime-Cognito-Identity"] == '{"cognitoIdentityId":"i"}'
    assert 2000 < int(headers["Lambda-Runtime-Deadline-Ms"]) - now * 1000 <= 3000
    assert job.delivered.done()


def test_answers_out_of_turn_get_rapids_errors(run):
    async def scenario():
        async with api() as (server, client):
            early = await client.post(f"{V}/invocation/req-1/response", content=b"{}")
            server.submit(invocation())
            await client.get(f"{V}/invocation/next")
            wrong = await client.post(f"{V}/invocation/req-other/response", content=b"{}")
            right = await client.post(f"{V}/invocation/req-1/response", content=b'"ok"')
            again = await client.post(f"{V}/invocation/req-1/response", content=b'"ok"')
            error_after = await client.post(f"{V}/invocation/req-1/error", content=b"{}")
            return early, wrong, right, again, error_after

    early, wrong, right, again, error_after = run(scenario())
    assert (early.status_code, early.json()) == (403, not_allowed("Started", "InvocationResponse"))
    assert (wrong.status_code, wrong.json()) == (
        400,
        {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"},
    )
    assert (right.status_code, right.json()) == (202, {"status": "OK"})
    assert again.status_code == 403
    assert again.json() == not_allowed("RuntimeResponseSentState", "InvocationResponse")
    assert error_after.json() == not_allowed("RuntimeResponseSentState", "InvocationErrorResponse")


def test_a_response_and_an_error_settle_the_invocation(run):
    async def scenario():
        async with api() as (server, client):
            first = server.submit(invocation("req-1"))
            await client.get(f"{V}/invocation/next")
            await client.post(f"{V}/invocation/req-1/response", content=b'{"ok": true}')
            second = server.submit(invocation("req-2"))
            await client.get(f"{V}/invocation/next")
            body = b'{"errorMessage": "no", "errorType": "MyError"}'
            headers = {"Lambda-Runtime-Function-Error-Type": "MyError"}
            posted = await client.post(f"{V}/invocation/req-2/error", content=body, headers=headers)
            return await first.outcome, await second.outcome, posted

    first, second, posted = run(scenario())
    assert first == Outcome(b'{"ok": true}')
    assert second == Outcome(b'{"errorMessage": "no", "errorType": "MyError"}', "MyError")
    assert posted.status_code == 202


def test_an_init_error_fails_every_invocation_and_closes_next(run):
    async def scenario():
        async with api() as (server, client):
            queued = server.submit(invocation("req-1"))
            body = b'{"errorMessage": "bad config", "errorType": "Runtime.Custom"}'
            headers = {"Lambda-Runtime-Function-Error-Type": "Runtime.Custom"}
            posted = await client.post(f"{V}/init/error", content=body, headers=headers)
            later = server.submit(invocation("req-2"))  # settled at once
            next_ = await client.get(f"{V}/invocation/next")
            twice = await client.post(f"{V}/init/error", content=body, headers=headers)
            return posted, await queued.outcome, later.outcome.result(), next_, twice

    posted, queued, later, next_, twice = run(scenario())
    assert posted.status_code == 202
    expected = Outcome(
        b'{"errorMessage": "bad config", "errorType": "Runtime.Custom"}', "Runtime.Custom", True
    )
    assert queued == later == expected
    assert (next_.status_code, next_.json()) == (403, not_allowed("InitError", "Ready"))
    assert (twice.status_code, twice.json()) == (403, not_allowed("InitError", "InitError"))


def test_a_response_over_6_mb_is_refused_with_413(run):
    async def scenario():
        async with api() as (server, client):
            job = server.submit(invocation())
            await client.get(f"{V}/invocation/next")
            too_big = b"x" * (MAX_RESPONSE + 1)
            posted = await client.post(f"{V}/invocation/req-1/response", content=too_big)
            return posted, await job.outcome

    posted, outcome = run(scenario())
    assert posted.status_code == 413
    assert posted.json() == {
        "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
        "errorType": "RequestEntityTooLarge",
    }
    assert outcome.error_type == "Function.ResponseSizeTooLarge"
    assert orjson.loads(outcome.payload)["errorMessage"] == (
        f"Response payload size ({MAX_RESPONSE + 1} bytes) exceeded maximum allowed payload "
        f"size ({MAX_RESPONSE} bytes)."
    )


def test_next_while_an_invocation_is_in_flight_hands_it_out_again(run):
    async def scenario():
        async with api() as (server, client):
            server.submit(invocation("req-1"))
            first = await client.get(f"{V}/invocation/next")
            again = await client.get(f"{V}/invocation/next")
            return first, again

    first, again = run(scenario())
    assert first.headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert again.headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"


def test_a_poll_whose_connection_closed_does_not_swallow_the_invocation(run):
    async def scenario():
        async with api() as (server, client):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"GET {V}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.05)
            job = server.submit(invocation("req-1"))
            fresh = await client.get(f"{V}/invocation/next")
            return fresh, job

    fresh, job = run(scenario())
    assert fresh.headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert job.delivered.done()


def test_unknown_paths_and_methods(run):
    async def scenario():
        async with api() as (_, client):
            return (
                await client.get("/2018-06-01/runtime/nope"),
                await client.get("/"),
                await client.post(f"{V}/invocation/next"),
                await client.get(f"{V}/invocation/req-1/response"),
            )

    nope, root, post_next, get_response = run(scenario())
    assert nope.status_code == root.status_code == 404
    assert post_next.status_code == get_response.status_code == 405


def test_malformed_http_gets_400_and_the_server_keeps_serving(run):
    async def exchange(port: int, data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        answer = await reader.read()  # until the server closes the connection
        writer.close()
        await writer.wait_closed()
        return answer

    async def scenario():
        async with api() as (server, client):
            garbage = await exchange(server.port, b"\x00\x01 NOT HTTP\r\n\r\n")
            huge_header = await exchange(
                server.port, b"GET / HTTP/1.1\r\nX: " + b"a" * (3 << 20) + b"\r\n\r\n"
            )
            # Two pipelined requests in one write are answered in order.
            pipelined = await exchange(
                server.port,
                f"GET {V}/x HTTP/1.1\r\nHost: x\r\n\r\n"
                f"POST {V}/invocation/r/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\n{}".encode(),
            )
            still = await client.get(f"{V}/nope")
            return garbage, huge_header, pipelined, still

    garbage, huge_header, pipelined, still = run(scenario())
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert huge_header.startswith(b"HTTP/1.1 431 ")
    assert pipelined.startswith(b"HTTP/1.1 404 ")
    assert b"HTTP/1.1 403 " in pipelined and pipelined.index(b" 403 ") > pipelined.index(b" 404 ")
    assert still.status_code == 404
