"""Declaration-time validation of the decorator front door."""

from __future__ import annotations

import pytest

from skylift import App, DeclarationError


def handler(event, context):
    return None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout 0 is out of range: use 1 to 900 seconds"),
        ({"timeout": 901}, "timeout 901 is out of range"),
        ({"memory": 64}, "memory 64 MB is out of range: use 128 to 10240"),
        ({"ephemeral_storage": 256}, "ephemeral_storage (MB of /tmp) must be 512 to 10240"),
        ({"ephemeral_storage": 10241}, "ephemeral_storage (MB of /tmp) must be 512 to 10240"),
        ({"environment": {"AWS_REGION": "x"}}, "AWS_REGION is reserved by Lambda"),
        ({"environment": {"1BAD": "x"}}, "environment variable name '1BAD' is invalid"),
        ({"environment": {"N": 1}}, "environment variable N must be a string"),
        ({"max_concurrency": -1}, "max_concurrency must be a whole number >= 0"),
        ({"idle_timeout": 0}, "idle_timeout must be a number of seconds from 0 to 86400"),
        ({"idle_timeout": "5"}, "idle_timeout must be a number of seconds"),
        ({"spawn": "yes"}, "spawn must be True or False"),
        ({"spawn": True, "runtime_command": ["./bootstrap"]}, "drop spawn=True"),
    ],
)
def test_bad_options_fail_at_declaration_naming_the_function(options, message):
    app = App()
    with pytest.raises(DeclarationError) as info:
        app.function(**options)(handler)
    assert "function 'handler'" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("path", "methods", "message"),
    [
        ("change", ["POST"], "must start with '/'"),
        ("/a/{b", ["GET"], "is not a parameter"),
        ("/{proxy+}/x", ["GET"], "greedy {proxy+} must be last"),
        ("/a", ["FETCH"], "HTTP method 'FETCH'"),
        ("/a/{x}/{x}", ["GET"], "repeats the parameter 'x'"),
        ("/_skylift/status", ["GET"], "skylift's control API"),
        ("/_skylift", ["GET"], "choose another path"),
    ],
)
def test_bad_routes_fail_at_declaration(path, methods, message):
    app = App()
    with pytest.raises(DeclarationError, match="function 'handler'") as info:
        app.http(path, methods=methods)(handler)
    assert message in str(info.value)


def test_duplicate_route_names_both_functions():
    app = App()

    @app.http("/items/{id}", methods=["GET"])
    def first(event, context): ...

    with pytest.raises(DeclarationError) as info:

        @app.http("/items/{key}", methods=["GET"], payload="1.0")
        def second(event, context): ...

    assert "function 'second'" in str(info.value)
    assert "already served by function 'first'" in str(info.value)


def test_same_name_twice_is_refused():
    app = App()
    app.function(name="job")(handler)
    with pytest.raises(DeclarationError, match="declared twice"):
        app.function(name="job")(lambda e, c: None)


def test_stacked_decorators_add_routes_to_one_function():
    app = App()

    @app.http("/a", methods=["GET"])
    @app.http("/b", methods=["POST"])
    def both(event, context): ...

    ((spec, fn),) = app.resolve("/srv", "app")
    assert fn is both
    assert [r.path for r in spec.routes] == ["/b", "/a"]
    assert spec.handler.endswith(".both") and spec.code_dir == "/srv"


def test_greedy_routes_with_different_names_collide():
    app = App()
    app.http("/files/{path+}", methods=["GET"])(handler)
    with pytest.raises(DeclarationError, match="already served by function 'handler'"):
        app.http("/files/{rest+}", methods=["GET"], name="other")(handler)


def test_stacked_function_options_merge_with_trigger_decorators():
    app = App()

    @app.function(max_concurrency=5, timeout=10)
    @app.http("/a", methods=["GET"])
    def both(event, context): ...

    ((spec, _),) = app.resolve("/srv", "app")
    assert spec.max_concurrency == 5 and spec.timeout == 10 and spec.routes[0].path == "/a"
    with pytest.raises(DeclarationError, match="different values for timeout"):
        app.http("/b", methods=["GET"], timeout=20)(both)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": 3}, "retries 3 is out of range: Lambda allows 0 to 2"),
        ({"max_event_age": 30}, "max_event_age 30 is out of range"),
        ({"on_failure": "topic:alerts"}, "destination 'topic:alerts' is not understood"),
        ({"on_success": "function:handler"}, "cannot be its own destination"),
    ],
)
def test_bad_async_options_fail_at_declaration(options, message):
    with pytest.raises(DeclarationError) as info:
        App().function(**options)(handler)
    assert message in str(info.value)


def test_a_destination_function_must_exist_in_the_app():
    from skylift.spec_checks import validate_destinations

    app = App()
    app.function(on_failure="function:missing")(handler)
    specs = [spec for spec, _ in app.resolve("/srv", "app")]
    with pytest.raises(DeclarationError, match="destination function 'missing' is not declared"):
        validate_destinations(specs)
