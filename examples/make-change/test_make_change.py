"""make-change through a real skylift server, as a client would use it."""

from pathlib import Path

import httpx
import pytest

from skylift.testing import serve

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def client():
    with serve(str(HERE)) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


def test_the_documented_example_exactly(client):
    response = client.post("/change", json={"amount": "1.89"})
    assert response.status_code == 200
    assert response.text == '{"res": [{"7": "quarters"}, {"1": "dimes"}, {"4": "pennies"}]}'


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.30", [{"1": "quarters"}, {"1": "nickels"}]),
        ("0", []),
        (0.41, [{"1": "quarters"}, {"1": "dimes"}, {"1": "nickels"}, {"1": "pennies"}]),
        ("100.00", [{"400": "quarters"}]),
    ],
)
def test_amounts(client, amount, expected):
    assert client.post("/change", json={"amount": amount}).json() == {"res": expected}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"amount" is missing'),
        ({"amount": "lots"}, "must be a number of dollars"),
        ({"amount": "-1.00"}, "must not be negative"),
        ({"amount": "1.234"}, "whole cents"),
        ({"amount": None}, "must be a number of dollars"),
        ({"amount": "NaN"}, "finite"),
    ],
)
def test_bad_amounts_are_400_saying_what_is_wrong(client, body, message):
    response = client.post("/change", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_body_that_is_not_json_is_400(client):
    response = client.post("/change", content=b"amount=1.89")
    assert response.status_code == 400
    assert "must be JSON" in response.json()["error"]


def test_only_post_is_served(client):
    assert client.get("/change").status_code == 404
