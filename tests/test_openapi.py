"""OpenAPI documents from an app's routes: decorators with pydantic models, and SAM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from skylift import App
from skylift.errors import DeclarationError
from skylift.openapi import document, operations
from skylift.sam import load_template


class Item(BaseModel):
    name: str
    price: float


class Saved(BaseModel):
    id: str
    item: Item


def make_app() -> App:
    app = App("shop", docs=True)

    @app.http("/items", methods=["POST"], request_model=Item, response_model=Saved)
    def add_item(event: Any, context: Any) -> dict[str, Any]:
        """Add an item to the shop.

        Answers the stored item with its new id.
        """
        return {}

    @app.http("/items/{id}", methods=["GET", "DELETE"])
    def item(event: Any, context: Any) -> dict[str, Any]:
        """One item, by id."""
        return {}

    @app.http("/files/{path+}", methods=["ANY"])
    def files(event: Any, context: Any) -> dict[str, Any]:
        return {}

    return app


def test_paths_methods_and_path_parameters_come_from_the_routes() -> None:
    doc = make_app().openapi()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "shop"
    assert set(doc["paths"]) == {"/items", "/items/{id}", "/files/{path}"}
    assert set(doc["paths"]["/items/{id}"]) == {"get", "delete"}
    assert doc["paths"]["/items/{id}"]["get"]["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    # ANY has no OpenAPI method: every usual one is documented
    assert set(doc["paths"]["/files/{path}"]) == {"get", "post", "put", "patch", "delete"}


def test_the_docs_routes_do_not_document_themselves() -> None:
    assert not {"/openapi.json", "/docs", "/docs/{asset}"} & set(make_app().openapi()["paths"])


def test_summaries_come_from_docstrings() -> None:
    post = make_app().openapi()["paths"]["/items"]["post"]
    assert post["summary"] == "Add an item to the shop."
    assert post["description"] == "Answers the stored item with its new id."
    assert "summary" not in make_app().openapi()["paths"]["/files/{path}"]["get"]


def test_request_and_response_models_become_schemas() -> None:
    doc = make_app().openapi()
    post = doc["paths"]["/items"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Item"}
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/Saved"}
    schemas = doc["components"]["schemas"]
    assert schemas["Item"]["required"] == ["name", "price"]
    assert schemas["Saved"]["properties"]["item"] == {"$ref": "#/components/schemas/Item"}
    assert "400" in post["responses"]


def test_the_document_is_valid_openapi_3_1() -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    Draft202012Validator(OPENAPI_31).validate(make_app().openapi())


def test_a_model_that_is_not_pydantic_fails_at_declaration() -> None:
    app = App()
    with pytest.raises(DeclarationError, match="not a pydantic model"):

        @app.http("/x", methods=["POST"], request_model=dict)
        def x(event: Any, context: Any) -> None: ...


def test_a_sam_app_gets_paths_methods_and_parameters(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {}\n")
    events = {
        "Get": {"Type": "HttpApi", "Properties": {"Path": "/orders/{id}", "Method": "get"}},
        "Put": {"Type": "Api", "Properties": {"Path": "/orders/{id}", "Method": "put"}},
    }
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Orders": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Runtime": "python3.12", "Handler": "app.handler", "Events": events},
            }
        },
    }
    (tmp_path / "template.yaml").write_text(yaml.safe_dump(template))
    doc = document("orders", operations(load_template(tmp_path / "template.yaml")))
    assert set(doc["paths"]["/orders/{id}"]) == {"get", "put"}
    assert doc["paths"]["/orders/{id}"]["put"]["parameters"][0]["name"] == "id"


def test_a_body_off_the_model_is_400_before_the_handler_runs() -> None:
    app = App()
    ran: list[Any] = []

    @app.http("/items", methods=["POST"], request_model=Item)
    def add(event: Any, context: Any) -> dict[str, Any]:
        ran.append(event)
        return {"statusCode": 201}

    [(_, handler)] = app.resolve("/tmp", "app")
    gateway = {"requestContext": {}, "isBase64Encoded": False}
    answer = handler({**gateway, "body": '{"name": "pen", "price": "cheap"}'}, None)
    assert answer["statusCode"] == 400 and not ran
    body = json.loads(answer["body"])
    assert body["detail"][0]["loc"] == ["price"]
    assert "price: Input should be a valid number" in body["error"]
    assert handler({**gateway, "body": '{"name": "pen", "price": 2}'}, None)["statusCode"] == 201
    # an Invoke API payload is the handler's own business
    assert handler({"anything": 1}, None)["statusCode"] == 201


def test_openapi_keys_are_added_to_the_operation() -> None:
    app = App()
    query = {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}
    op_enum = {"name": "op", "in": "path", "required": True, "schema": {"enum": ["a", "b"]}}
    extra = {"parameters": [op_enum, query], "responses": {"404": {"description": "no such op"}}}

    @app.http("/run/{op}", methods=["PUT"], openapi=extra)
    def run(event: Any, context: Any) -> None: ...

    put = app.openapi()["paths"]["/run/{op}"]["put"]
    assert put["parameters"] == [op_enum, query]  # the route's own `op` is replaced
    assert set(put["responses"]) == {"200", "404"}
