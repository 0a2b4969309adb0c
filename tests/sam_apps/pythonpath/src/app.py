import helper


def handler(event, context):
    return helper.NAME
