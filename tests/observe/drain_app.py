"""A test app for the `drain` action: a queue worker that fails on the messages asking."""

from skylift import App

app = App("draining")


@app.queue("orders", batch_size=1)
def worker(event, context):
    for record in event["Records"]:
        if record["body"] == "fail":
            raise RuntimeError("the payment service is down")
    return {}
