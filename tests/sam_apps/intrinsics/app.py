import os


def handler(event, context):
    names = ("STAGE", "MODE", "ONLY_PROD", "FIRST_HOST", "ALL_HOSTS", "DOMAIN", "WHERE")
    return {name: os.environ.get(name) for name in names} | {"memory": context.memory_limit_in_mb}
