def handler(event, context):
    return {"plain": context.function_name}
