import only_a
import shared
import sitepkg


def handler(event, context):
    return [shared.WHO, only_a.WHO, sitepkg.WHO]
