"""What a server imports for what it does not use: each costs its memory for the life of
the server (redis-py 18 MiB, httpx with PyJWT and cryptography about 25 MiB, jsonschema
8.5 MiB), so they come only with the option or route that needs them."""

from __future__ import annotations

import subprocess
import sys

ON_DEMAND = ("redis", "jwt", "cryptography", "httpx", "jsonschema")


def test_the_supervisor_imports_redis_jwt_and_jsonschema_only_when_used():
    script = (
        "import sys\n"
        "import skylift.cli.up, skylift.engine.platform, skylift.gateway.server\n"
        f"print(' '.join(m for m in {ON_DEMAND!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
