"""make-change: how many quarters, dimes, nickels and pennies make up an amount.

POST /change with {"amount": "1.89"} answers
{"res": [{"7": "quarters"}, {"1": "dimes"}, {"4": "pennies"}]}.
"""

import json
from decimal import Decimal, InvalidOperation

from skylift import App

app = App("make-change")

COINS = [
    (Decimal("0.25"), "quarters"),
    (Decimal("0.10"), "dimes"),
    (Decimal("0.05"), "nickels"),
    (Decimal("0.01"), "pennies"),
]


def make_change(amount: Decimal) -> list[dict[str, str]]:
    """Greedy change in US coins; coins not needed are left out."""
    res = []
    for value, name in COINS:
        count, amount = divmod(amount, value)
        if count:
            res.append({str(int(count)): name})
    return res


def parse_amount(body: str | None) -> Decimal:
    """The amount in dollars, or ValueError saying what is wrong with the request."""
    try:
        data = json.loads(body or "")
    except json.JSONDecodeError:
        raise ValueError('the body must be JSON like {"amount": "1.89"}') from None
    if not isinstance(data, dict) or "amount" not in data:
        raise ValueError('"amount" is missing: send {"amount": "1.89"}')
    raw = data["amount"]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f'"amount" must be a number of dollars like "1.89", got {raw!r}')
    try:
        # str() first: a float like 1.89 must become Decimal("1.89"), not its binary value
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f'"amount" must be a number of dollars like "1.89", got {raw!r}') from None
    if not amount.is_finite():
        raise ValueError(f'"amount" must be a finite number, got {raw!r}')
    if amount < 0:
        raise ValueError(f'"amount" must not be negative, got {raw!r}')
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f'"amount" must be in whole cents (at most 2 decimals), got {raw!r}')
    return amount


def respond(status: int, payload: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


@app.http("/change", methods=["POST"])
def change(event, context):
    try:
        amount = parse_amount(event.get("body"))
    except ValueError as exc:
        return respond(400, {"error": str(exc)})
    return respond(200, {"res": make_change(amount)})
