import uuid

INSTANCE = {}  # this instance's id, made at its first invocation (forks share the import)
SEEN = []  # the tenants this instance served: one, with tenant isolation


def handler(event, context):
    INSTANCE.setdefault("id", str(uuid.uuid4()))
    SEEN.append(context.tenant_id)
    return {
        "tenant": context.tenant_id,
        "instance": INSTANCE["id"],
        "seen": sorted(map(str, set(SEEN))),
    }
