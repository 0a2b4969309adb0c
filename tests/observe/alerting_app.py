"""A test app for alerting: two functions that fail when the event says so."""

from skylift import App

app = App("alerting")
app.declare_queue("backlog")  # nothing consumes it: its oldest message only ages


@app.function()
def pay(event, context):
    if event.get("fail"):
        raise RuntimeError("card declined")
    return {"ok": True}


@app.function()
def charge(event, context):
    if event.get("fail"):
        raise RuntimeError("card declined")
    return {"ok": True}
