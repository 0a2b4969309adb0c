import skylift_sample_dep


def handler(event, context):
    return skylift_sample_dep.GREETING
