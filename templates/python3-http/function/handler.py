def handle(event, context):
    """Called once per request.

    event.body     raw request body (bytes)
    event.headers  request headers (case-insensitive: event.headers.get("content-type"))
    event.method   "GET", "POST", ...
    event.query    query arguments: event.query.get("name"), event.query.getlist("tag")
    event.path     "/" or "/sub/path"
    context.hostname

    Return a dict with optional "statusCode", "body" and "headers", or just a body
    (str, bytes, dict or list), or a (body, status[, headers]) tuple.
    """
    name = event.query.get("name", "world")
    return {
        "statusCode": 200,
        "body": {"message": "Hello, %s!" % name, "method": event.method, "path": event.path},
    }
