"""The SAM template loader: real template files in, validated FunctionSpecs or errors out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from skylift.errors import DeclarationError, LoadError
from skylift.interpreters import for_runtime
from skylift.sam import cfn_yaml, load_template
from skylift.spec import FunctionSpec, HttpRoute

HANDLER_CODE = "def handler(event, context):\n    return {}\n"


def function(**properties: Any) -> dict[str, Any]:
    """A minimal valid AWS::Serverless::Function, with `properties` on top."""
    base = {"Runtime": "python3.12", "Handler": "app.handler"}
    return {"Type": "AWS::Serverless::Function", "Properties": {**base, **properties}}


def write(root: Path, template: dict[str, Any] | str, files: tuple[str, ...] = ("app.py",)) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(HANDLER_CODE)
    text = template if isinstance(template, str) else yaml.safe_dump(template, sort_keys=False)
    path = root / "template.yaml"
    path.write_text(textwrap.dedent(text) if isinstance(template, str) else text)
    return path


def load(root: Path, template: dict[str, Any] | str, **kwargs: Any) -> list[FunctionSpec]:
    return load_template(write(root, template, **kwargs))


def only(specs: list[FunctionSpec]) -> FunctionSpec:
    assert len(specs) == 1
    return specs[0]


def test_minimal_function_gets_lambda_defaults(tmp_path: Path) -> None:
    spec = only(load(tmp_path, {"Resources": {"Hello": function()}}))
    python = for_runtime(
        "python3.12"
    )  # installed here, or skylift's own (tests/test_runtime_interpreter.py)

    assert spec == FunctionSpec(
        name="Hello",
        handler="app.handler",
        code_dir=str(tmp_path.resolve()),
        runtime="python3.12",
        timeout=3,
        memory=128,
        environment={},
        max_concurrency=None,
        routes=(),
        spawn=not python.own,
        interpreter=None if python.own else python.path,
    )


def test_a_directory_loads_its_template_yaml(tmp_path: Path) -> None:
    write(tmp_path, {"Resources": {"Hello": function()}})

    assert only(load_template(tmp_path)).name == "Hello"


def test_globals_merge_under_each_function(tmp_path: Path) -> None:
    template = {
        "Globals": {
            "Function": {
                "Runtime": "python3.11",
                "Timeout": 30,
                "MemorySize": 512,
                "CodeUri": "src",
                "Environment": {"Variables": {"TABLE": "items", "LEVEL": "info"}},
            }
        },
        "Resources": {
            "Plain": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.a"}},
            "Tuned": function(Timeout=60, Environment={"Variables": {"LEVEL": "debug", "X": 1}}),
        },
    }
    plain, tuned = load(tmp_path, template, files=("src/app.py",))

    assert (plain.runtime, plain.timeout, plain.memory) == ("python3.11", 30, 512)
    assert plain.code_dir == str((tmp_path / "src").resolve())
    assert plain.environment == {"TABLE": "items", "LEVEL": "info"}
    assert (tuned.runtime, tuned.timeout, tuned.memory) == ("python3.12", 60, 512)
    # Variables merge key by key; the function's own value wins.
    assert tuned.environment == {"TABLE": "items", "LEVEL": "debug", "X": "1"}


ALL_TAGS = """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Env: {Type: String, Default: dev}
    Conditions:
      IsDev: !Equals [!Ref Env, dev]
      NotDev: !Not [!Condition IsDev]
      Both: !And [!Condition IsDev, !Or [!Condition IsDev, !Condition NotDev]]
    Mappings:
      Sizes: {dev: {Memory: 256}}
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
        Properties:
          Arn1: !GetAtt Table.Arn
          Arn2: !GetAtt [Table, Arn]
          Joined: !Join [",", [a, b]]
          Picked: !Select [0, !Split [",", "x,y"]]
          Subbed: !Sub "${Env}-t"
          SubbedVars: !Sub ["${A}", {A: !Ref Env}]
          Encoded: !Base64 text
          Cidrs: !Cidr [10.0.0.0/16, 2, 8]
          Imported: !ImportValue shared
          Zones: !GetAZs ""
          Mapped: !FindInMap [Sizes, !Ref Env, Memory]
          Chosen: !If [IsDev, yes, no]
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: app.handler
          MemorySize: !FindInMap [Sizes, !Ref Env, Memory]
    """


def test_every_short_tag_parses_to_its_long_form(tmp_path: Path) -> None:
    path = write(tmp_path, ALL_TAGS)
    doc = cfn_yaml.parse(path.read_text())

    assert doc["Conditions"] == {
        "IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]},
        "NotDev": {"Fn::Not": [{"Condition": "IsDev"}]},
        "Both": {
            "Fn::And": [
                {"Condition": "IsDev"},
                {"Fn::Or": [{"Condition": "IsDev"}, {"Condition": "NotDev"}]},
            ]
        },
    }
    assert doc["Resources"]["Table"]["Properties"] == {
        "Arn1": {"Fn::GetAtt": ["Table", "Arn"]},
        "Arn2": {"Fn::GetAtt": ["Table", "Arn"]},
        "Joined": {"Fn::Join": [",", ["a", "b"]]},
        "Picked": {"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]},
        "Subbed": {"Fn::Sub": "${Env}-t"},
        "SubbedVars": {"Fn::Sub": ["${A}", {"A": {"Ref": "Env"}}]},
        "Encoded": {"Fn::Base64": "text"},
        "Cidrs": {"Fn::Cidr": ["10.0.0.0/16", 2, 8]},
        "Imported": {"Fn::ImportValue": "shared"},
        "Zones": {"Fn::GetAZs": ""},
        "Mapped": {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]},
        "Chosen": {"Fn::If": ["IsDev", True, False]},
    }
    # The loader reads the same file; unresolvable intrinsics elsewhere do not matter.
    assert only(load_template(path)).memory == 256


def test_json_templates_load(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HANDLER_CODE)
    path = tmp_path / "template.json"
    path.write_text(json.dumps({"Resources": {"Hello": function(Timeout=9)}}, indent="\t"))

    assert only(load_template(path)).timeout == 9


def test_api_and_http_api_events_become_routes(tmp_path: Path) -> None:
    events = {
        "Rest": {"Type": "Api", "Properties": {"Path": "/items/{id}", "Method": "get"}},
        "RestAny": {"Type": "Api", "Properties": {"Path": "/any", "Method": "any"}},
        "Http": {"Type": "HttpApi", "Properties": {"Path": "/v2", "Method": "POST"}},
        "HttpV1": {
            "Type": "HttpApi",
            "Properties": {"Path": "/v1", "Method": "put", "PayloadFormatVersion": "1.0"},
        },
        "CatchAll": {"Type": "HttpApi"},
    }
    spec = only(load(tmp_path, {"Resources": {"Hello": function(Events=events)}}))

    assert spec.routes == (
        HttpRoute("/items/{id}", ("GET",), "1.0"),
        HttpRoute("/any", ("ANY",), "1.0"),
        HttpRoute("/v2", ("POST",), "2.0"),
        # An HTTP API with payload 1.0: REST's event shape, HTTP API's error pages.
        HttpRoute("/v1", ("PUT",), "1.0", "http"),
        HttpRoute("$default", ("ANY",), "2.0"),
    )


ENV_TEMPLATE = """\
    Parameters:
      Stage: {Type: String, Default: prod}
      Retries: {Type: Number, Default: 5}
      Hosts: {Type: CommaDelimitedList, Default: "a.example,b.example"}
    Conditions:
      IsProd: !Equals [!Ref Stage, prod]
    Mappings:
      Levels: {prod: {Log: warn}}
    Resources:
      Queue:
        Type: AWS::SQS::Queue
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: app.handler
          FunctionName: !Sub "${Stage}-worker"
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: app.handler
          Environment:
            Variables:
              STAGE: !Ref Stage
              RETRIES: !Ref Retries
              REGION: !Ref AWS::Region
              ACCOUNT: !Ref AWS::AccountId
              STACK: !Ref AWS::StackName
              QUEUE: !Ref Queue
              WORKER: !Ref Worker
              URL: !Sub "https://${Stage}.${AWS::Region}.example/${!literal}"
              NAMED: !Sub ["${Prefix}-${Stage}", {Prefix: !Ref Queue}]
              MODE: !If [IsProd, fast, slow]
              LOG: !FindInMap [Levels, !Ref Stage, Log]
              HOSTS: !Join [";", !Ref Hosts]
              FIRST: !Select [1, !Split [",", "x,y,z"]]
              DEBUG: false
              RATIO: 0.5
              WHEN: 2024-01-31T10:00:00Z
              EMPTY:
              GONE: !If [IsProd, !Ref AWS::NoValue, here]
    """


def test_env_vars_resolve_refs_subs_and_conditions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    worker, hello = load(tmp_path, ENV_TEMPLATE)

    assert worker.name == "prod-worker"
    assert hello.environment == {
        "STAGE": "prod",
        "RETRIES": "5",
        "REGION": "us-east-1",
        "ACCOUNT": "123456789012",
        "STACK": "skylift",
        "QUEUE": "https://sqs.us-east-1.amazonaws.com/123456789012/Queue",
        "WORKER": "prod-worker",
        "URL": "https://prod.us-east-1.example/${literal}",
        "NAMED": "https://sqs.us-east-1.amazonaws.com/123456789012/Queue-prod",
        "MODE": "fast",
        "LOG": "warn",
        "HOSTS": "a.example;b.example",
        "FIRST": "y",
        "DEBUG": "false",
        "RATIO": "0.5",
        "WHEN": "2024-01-31T10:00:00Z",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"Fn::GetAtt": ["Nowhere", "Arn"]}, "Fn::GetAtt Nowhere.Arn names no resource"),
        ({"Fn::Sub": "${Nowhere.Arn}"}, "Fn::GetAtt Nowhere.Arn names no resource"),
        ({"Ref": "Nowhere"}, "Ref Nowhere names no parameter"),
        ({"Fn::ImportValue": "shared"}, "Fn::ImportValue can only be evaluated by AWS"),
    ],
)
def test_unresolvable_env_var_names_function_and_variable(
    tmp_path: Path, value: Any, reason: str
) -> None:
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Hello": function(Environment={"Variables": {"QUEUE_ARN": value}}),
        },
    }
    with pytest.raises(DeclarationError) as caught:
        load(tmp_path, template)

    message = str(caught.value)
    assert caught.value.function == "Hello"
    assert message.startswith("function 'Hello': environment variable QUEUE_ARN")
    assert reason in message
    assert "use a literal value or a parameter with a Default" in message


def test_reserved_concurrency_becomes_max_concurrency(tmp_path: Path) -> None:
    template = {"Resources": {"Hello": function(ReservedConcurrentExecutions=4)}}

    assert only(load(tmp_path, template)).max_concurrency == 4


def test_ephemeral_storage_sizes_tmp_from_globals_or_the_function(tmp_path: Path) -> None:
    template = {
        "Globals": {"Function": {"EphemeralStorage": {"Size": 2048}}},
        "Resources": {
            "Sized": function(EphemeralStorage={"Size": "10240"}),  # a parameter's text
            "Inherits": function(),
        },
    }
    specs = {spec.name: spec for spec in load(tmp_path, template)}

    assert specs["Sized"].ephemeral_storage == 10240
    assert specs["Inherits"].ephemeral_storage == 2048
    assert only(load(tmp_path, {"Resources": {"Plain": function()}})).ephemeral_storage == 512


def test_parameters_feed_numeric_properties(tmp_path: Path) -> None:
    template = {
        "Parameters": {"Seconds": {"Type": "Number", "Default": 42}},
        "Resources": {"Hello": function(Timeout={"Ref": "Seconds"}, MemorySize="1024")},
    }
    spec = only(load(tmp_path, template))

    assert (spec.timeout, spec.memory) == (42, 1024)


def test_skips_other_resource_types_and_false_conditions(tmp_path: Path) -> None:
    template = {
        "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
        "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
        "Resources": {
            # A plain Lambda (here a Node.js custom-resource helper) is not skylift's to run.
            "Helper": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "nodejs20.x", "Handler": "index.handler"},
            },
            "ProdOnly": {**function(), "Condition": "IsProd"},
            "Hello": function(),
        },
    }

    assert [spec.name for spec in load(tmp_path, template)] == ["Hello"]


@pytest.mark.parametrize(
    ("handler", "files"),
    [
        ("app.handler", ("app.py",)),
        ("app.handler", ("app/__init__.py",)),
        ("pkg/mod.handler", ("pkg/mod.py",)),
        ("pkg.mod.handler", ("pkg/mod.py",)),
    ],
)
def test_handler_module_file_is_found(tmp_path: Path, handler: str, files: tuple[str]) -> None:
    template = {"Resources": {"Hello": function(Handler=handler)}}

    assert only(load(tmp_path, template, files=files)).handler == handler


def events(**declared: dict[str, Any]) -> dict[str, Any]:
    return {"Events": declared}


GET_ROOT = {"Type": "Api", "Properties": {"Path": "/", "Method": "GET"}}

DECLARATION_ERRORS = {
    "bad runtime": (
        function(Runtime="nodejs20.x"),
        ["Runtime 'nodejs20.x' is not supported", "skylift runs python3.x", "provided.al2023"],
    ),
    "missing runtime": (
        {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}},
        ["Runtime is missing", "set Runtime"],
    ),
    "missing handler file": (
        function(Handler="main.handler"),
        ["Handler 'main.handler' needs module 'main'", "main.py", "fix Handler or CodeUri"],
    ),
    "Api event without Method": (
        function(**events(Get={"Type": "Api", "Properties": {"Path": "/"}})),
        ["event 'Get'", "needs Properties.Method", "add it"],
    ),
    "HttpApi event with Path only": (
        function(**events(Get={"Type": "HttpApi", "Properties": {"Path": "/"}})),
        ["event 'Get'", "both Path and Method, or neither", "add Method"],
    ),
    "timeout out of range": (
        function(Timeout=901),
        ["timeout 901 is out of range", "use 1 to 900 seconds"],
    ),
    "timeout not a number": (function(Timeout="soon"), ["Timeout must be a whole number"]),
    "negative reserved concurrency": (
        function(ReservedConcurrentExecutions=-1),
        ["ReservedConcurrentExecutions -1 is negative", "set it to 0 (the function is off)"],
    ),
    "ephemeral storage too small": (
        function(EphemeralStorage={"Size": 256}),
        ["EphemeralStorage needs Size", "512 to 10240", "got 256"],
    ),
    "ephemeral storage without Size": (
        function(EphemeralStorage=1024),
        ["EphemeralStorage needs Size", "got None"],
    ),
    "missing CodeUri directory": (
        function(CodeUri="build/hello"),
        ["CodeUri 'build/hello'", "does not exist", "set CodeUri to the folder"],
    ),
    "S3 CodeUri": (
        function(CodeUri="s3://bucket/code.zip"),
        ["is in S3", "local directory", "set CodeUri"],
    ),
    "reserved env var": (
        function(Environment={"Variables": {"AWS_REGION": "eu-west-1"}}),
        ["AWS_REGION is reserved by Lambda", "choose another name"],
    ),
}


@pytest.mark.parametrize(
    ("resource", "fragments"), DECLARATION_ERRORS.values(), ids=DECLARATION_ERRORS.keys()
)
def test_declaration_errors_name_function_and_fix(
    tmp_path: Path, resource: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(DeclarationError) as caught:
        load(tmp_path, {"Resources": {"Other": function(), "Broken": resource}})

    assert caught.value.function == "Broken"
    assert str(caught.value).startswith("function 'Broken': ")
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_duplicate_route_names_both_functions(tmp_path: Path) -> None:
    template = {
        "Resources": {
            "First": function(**events(Get=GET_ROOT)),
            "Second": function(**events(Again=GET_ROOT)),
        }
    }
    with pytest.raises(DeclarationError) as caught:
        load(tmp_path, template)

    assert caught.value.function == "Second"
    assert "route GET / is already served by function 'First'" in str(caught.value)
    assert "change the path or the method" in str(caught.value)


def test_errors_name_the_logical_id_when_function_name_differs(tmp_path: Path) -> None:
    template = {"Resources": {"Hello": function(FunctionName="hello-prod", MemorySize=64)}}
    with pytest.raises(DeclarationError) as caught:
        load(tmp_path, template)

    assert caught.value.function == "Hello"
    assert str(caught.value) == (
        "function 'Hello': memory 64 MB is out of range: use 128 to 10240 "
        "(FunctionName 'hello-prod')"
    )


def test_duplicate_function_names_are_rejected(tmp_path: Path) -> None:
    template = {"Resources": {"A": function(FunctionName="api"), "B": function(FunctionName="api")}}
    with pytest.raises(DeclarationError, match="FunctionName 'api' is also used by 'A'"):
        load(tmp_path, template)


@pytest.mark.parametrize(
    ("template", "fragments"),
    [
        ("Resources:\n  Hello: [unclosed\n", ["is not valid YAML or JSON", "line 3"]),
        ("Resources:\n  Hello: !Nope x\n", ["!Nope", "line 2"]),
        ("Description: nothing here\n", ["has no Resources section"]),
        (
            "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n",
            ["declares no AWS::Serverless::Function (or AWS::Lambda::Function) resources"],
        ),
    ],
    ids=["malformed YAML", "unknown tag", "no Resources", "no functions"],
)
def test_unusable_templates_raise_load_error(
    tmp_path: Path, template: str, fragments: list[str]
) -> None:
    with pytest.raises(LoadError) as caught:
        load(tmp_path, template)

    for fragment in fragments:
        assert fragment in str(caught.value)


def test_missing_template_raises_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="not found: pass the path of your SAM template"):
        load_template(tmp_path / "nope.yaml")
