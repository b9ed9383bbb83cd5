-- wrk script: POST a small JSON item (the fastapi scenario; wrk adds Content-Length).
-- Keep the body equal to ITEM in loadtests/scenarios.py: the harness checks the echo.
wrk.method = "POST"
wrk.body = '{"name": "widget", "price": 9.5, "quantity": 3, "tags": ["blue", "small"]}'
wrk.headers["Content-Type"] = "application/json"
