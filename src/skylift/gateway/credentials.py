"""The keys of `skylift up --credentials FILE`: AWS's shared-credentials format, one
profile per person or team, so the same file works as their `~/.aws/credentials`:

    [alice]
    aws_access_key_id = AKIAALICE0000000001
    aws_secret_access_key = a-long-random-secret

Other keys in a profile (region, aws_session_token) are ignored.
"""

from __future__ import annotations

import configparser
from pathlib import Path

from skylift.errors import SkyliftError

RESERVED_PREFIX = "ASIASKYLIFT"  # the key ids skylift gives its own functions


def load(path: str | Path) -> dict[str, str]:
    """access key id -> secret access key, or a SkyliftError saying what to fix."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as exc:
        raise SkyliftError(f"--credentials {path}: cannot read it ({exc.strerror})") from exc
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise SkyliftError(
            f"--credentials {path}: not an AWS credentials file ({exc}). Write one "
            "[profile] per person, with aws_access_key_id and aws_secret_access_key."
        ) from exc
    keys: dict[str, str] = {}
    owners: dict[str, str] = {}
    for profile in parser.sections():
        section = parser[profile]
        key_id = section.get("aws_access_key_id", "").strip()
        secret = section.get("aws_secret_access_key", "").strip()
        if not key_id or not secret:
            raise SkyliftError(
                f"--credentials {path}: profile [{profile}] needs both aws_access_key_id "
                "and aws_secret_access_key."
            )
        if not key_id.isalnum() or not 16 <= len(key_id) <= 128:
            raise SkyliftError(
                f"--credentials {path}: profile [{profile}]: the access key id must be 16 to "
                "128 letters and digits, like AWS's (e.g. AKIAALICE0000000001)."
            )
        if key_id.upper().startswith(RESERVED_PREFIX):
            raise SkyliftError(
                f"--credentials {path}: profile [{profile}]: key ids starting with "
                f"{RESERVED_PREFIX} are skylift's own (its functions'); choose another."
            )
        if len(secret) < 16:
            raise SkyliftError(
                f"--credentials {path}: profile [{profile}]: the secret is too short to "
                "protect anything; use at least 16 characters (40 random ones, as AWS's)."
            )
        if key_id in owners:
            raise SkyliftError(
                f"--credentials {path}: profiles [{owners[key_id]}] and [{profile}] have the "
                "same access key id; give each its own."
            )
        owners[key_id] = profile
        keys[key_id] = secret
    if not keys:
        raise SkyliftError(
            f"--credentials {path}: no profiles in it. Write one [profile] per person, with "
            "aws_access_key_id and aws_secret_access_key."
        )
    return keys
