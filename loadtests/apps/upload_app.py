"""Two upload endpoints for loadtests/upload.py.

`app`      FastAPI: POST /upload takes a multipart `file` as UploadFile (Starlette's
           multipart parser, spooled to a temporary file) and answers its size.
`raw_app`  raw ASGI: counts the body's bytes as receive() hands them over, so only
           the server's own reading is measured.
"""

from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.post("/upload")
async def upload(file: UploadFile) -> dict:
    size = 0
    while chunk := await file.read(1 << 20):
        size += len(chunk)
    return {"size": size}


async def raw_app(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b'{"size": %d}' % size
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
