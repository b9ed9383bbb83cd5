"""Quart app for the framework tests."""

from quart import Quart, jsonify, request

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    app.config["STARTED_BY_LIFESPAN"] = True


@app.route("/")
async def index():
    return "hello from quart"


@app.route("/json")
async def json_view():
    return jsonify({
        "framework": "quart",
        "args": request.args.to_dict(),
        "started": app.config.get("STARTED_BY_LIFESPAN", False),
    })


@app.route("/echo", methods=["POST"])
async def echo():
    body = await request.get_data()
    return body, 200, {"content-type": "application/octet-stream", "x-size": str(len(body))}


@app.route("/form", methods=["POST"])
async def form():
    data = await request.form
    return jsonify(data.to_dict())
