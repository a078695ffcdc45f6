"""Test pack for the editor: the seed's ``MyCustomNode`` (its extension adds a button to it), server routes
declared the aiohttp way, a web extension that imports ``app`` itself, translations under ``locales/``
and an example workflow."""

import os

from aiohttp import web
from server import PromptServer

HERE = os.path.dirname(os.path.abspath(__file__))
routes = PromptServer.instance.routes


class MyCustomNode:
    """The node the seed's ``my_extension.js`` adds its "Click Me" button to."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("FLOAT",)
    FUNCTION = "run"
    CATEGORY = "editor_test"

    def run(self, value):
        return (value,)


NODE_CLASS_MAPPINGS = {"MyCustomNode": MyCustomNode}
WEB_DIRECTORY = "./web"
NODE_DISPLAY_NAME_MAPPINGS = {"MyCustomNode": "My Custom Node"}


@routes.get("/editor_test/echo/{name}")
async def echo(request: web.Request) -> web.Response:
    return web.json_response({
        "name": request.match_info["name"],
        "query": dict(request.query),
        "all": request.query.getall("x", []),
        "method": request.method,
        "path": request.path,
        "header": request.headers.get("x-test"),
    })


@routes.get("/editor_test/rest/{tail:.*}")
async def rest(request):
    return web.Response(text="tail=" + request.match_info["tail"])


@routes.post("/editor_test/json")
async def post_json(request):
    body = await request.json()
    return web.json_response({"got": body, "content_type": request.content_type}, status=201)


@routes.post("/editor_test/form")
async def post_form(request):
    post = await request.post()
    upload = post.get("file")
    return web.json_response({
        "field": post.get("field"),
        "filename": upload.filename if upload is not None else None,
        "size": len(upload.file.read()) if upload is not None else None,
    })


@routes.post("/editor_test/multipart")
async def post_multipart(request):
    reader = await request.multipart()
    parts = []
    async for part in reader:
        data = await part.read()
        parts.append([part.name, part.filename, len(data)])
    return web.json_response(parts)


@routes.get("/editor_test/file")
async def get_file(request):
    return web.FileResponse(os.path.join(HERE, "static", "hello.txt"))


@routes.get("/editor_test/missing")
async def missing(request):
    raise web.HTTPNotFound(text="nothing here")


@routes.get("/editor_test/redirect")
async def redirect(request):
    raise web.HTTPFound("/editor_test/file")


@routes.post("/editor_test/notify")
async def notify(request):
    data = await request.json()
    PromptServer.instance.send_sync("editor_test.notice", data)
    return web.Response(status=204)


@routes.get("/models")
async def shadowed(request):  # the farm's own /models wins
    return web.json_response(["shadowed"])


routes.static("/editor_test/static", os.path.join(HERE, "static"))


async def plain(request):
    return web.Response(text="plain", content_type="text/plain")


PromptServer.instance.app.router.add_get("/editor_test/plain", plain)
