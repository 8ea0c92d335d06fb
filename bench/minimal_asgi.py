"""Ceilings on the same server stack: the smallest ASGI app, served by the same daphne.

``daphne bench.minimal_asgi:application`` answers every HTTP request with a tiny JSON
body after reading the request body, so a round trip costs only daphne + Twisted +
asgiref. Websockets at any path are accepted and kept; ``POST /broadcast`` sends its
body to every open websocket at once (the ceiling for live updates: push, no polling).
"""

BODY = b'{"ok": true}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
sockets: set = set()


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        sockets.add(send)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sockets.discard(send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/broadcast":
        for socket in list(sockets):
            await socket({"type": "websocket.send", "text": body.decode()})
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
