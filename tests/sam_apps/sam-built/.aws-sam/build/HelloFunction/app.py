import vendored_dep


def handler(event, context):
    return vendored_dep.WHERE
