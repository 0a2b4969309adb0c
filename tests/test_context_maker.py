"""The context an instance makes per invocation is the one LambdaContext(...) makes."""

from __future__ import annotations

from skylift.runtime.context import ContextMaker, LambdaContext

CONSTANT = {
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:change",
    "function_name": "change",
    "function_version": "$LATEST",
    "memory_limit_in_mb": 256,
    "log_group_name": "/aws/lambda/change",
    "log_stream_name": "2026/12/06/[$LATEST]abc",
}
CLIENT = {"client": {"installation_id": "i-1", "app_title": "t"}, "custom": {"k": 1}}


def plain(value: object) -> object:
    """An object with __slots__ as a dict of its fields, all the way down."""
    if hasattr(value, "__slots__"):
        return {name: plain(getattr(value, name)) for name in type(value).__slots__}
    return value


def fields(context: LambdaContext) -> dict[str, object]:
    return {name: plain(value) for name, value in vars(context).items()}


def test_made_contexts_equal_constructed_ones():
    make = ContextMaker(LambdaContext(aws_request_id="", deadline_ms=0, **CONSTANT))  # type: ignore[arg-type]
    cases = [
        ("req-1", 1000, None, None, None),
        ("req-2", 2000, CLIENT, {"cognitoIdentityId": "id", "cognitoIdentityPoolId": "p"}, "t1"),
        ("req-3", 3000, None, None, None),  # nothing left from the one before
    ]
    for request_id, deadline, client, identity, tenant in cases:
        made = make(request_id, deadline, client, identity, tenant)
        built = LambdaContext(
            aws_request_id=request_id,
            deadline_ms=deadline,
            client_context=client,
            identity=identity,
            tenant_id=tenant,
            **CONSTANT,  # type: ignore[arg-type]
        )
        assert type(made) is LambdaContext
        assert list(vars(made)) == list(vars(built))
        assert fields(made) == fields(built)
        assert repr(made) == repr(built)


def test_contexts_are_independent():
    make = ContextMaker(LambdaContext(aws_request_id="", deadline_ms=0, **CONSTANT))  # type: ignore[arg-type]
    first = make("a", 1)
    first.function_name = "changed by a handler"
    assert make("b", 2).function_name == "change"
