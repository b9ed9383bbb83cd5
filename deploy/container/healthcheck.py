"""The image's HEALTHCHECK: GET narwhal's ready path on the loopback port; exit 0 on 200.

The image has python3 (narwhal embeds it) but no curl, and needs none. The port and path
are the server's own settings (NARWHAL_PORT, NARWHAL_HEALTH_READY_PATH), so a container
started with other values checks what it serves.
"""

import http.client
import os
import sys

port = int(os.environ.get("NARWHAL_PORT", "8000"))
path = os.environ.get("NARWHAL_HEALTH_READY_PATH") or "/readyz"
try:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    conn.request("GET", path)
    status = conn.getresponse().status
except OSError as e:
    print(f"healthcheck: {e}", file=sys.stderr)
    sys.exit(1)
print(f"healthcheck: GET {path} -> {status}")
sys.exit(0 if status == 200 else 1)
