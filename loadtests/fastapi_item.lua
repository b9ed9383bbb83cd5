-- wrk script: POST a small JSON item (the fastapi scenario; wrk adds Content-Length).
-- scenarios.py reads this single-quoted body literal: the checks and instructions.py send
-- the same item, and expect it back.
wrk.method = "POST"
wrk.body = '{"name": "widget", "price": 9.5, "quantity": 3, "tags": ["blue", "small"]}'
wrk.headers["Content-Type"] = "application/json"
