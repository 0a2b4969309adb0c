"""`--state` URLs: skylift's prefix parameter, and passwords kept out of what is shown."""

from __future__ import annotations

import pytest

from skylift.errors import SkyliftError
from skylift.queues.redis_url import check, shown, split_url


def test_the_prefix_parameter_is_skylifts_and_the_rest_goes_to_redis() -> None:
    assert split_url("redis://h:6379/0?prefix=app1:") == ("redis://h:6379/0", "app1:")
    assert split_url("redis://h:6379/2?prefix=a&ssl_cert_reqs=none") == (
        "redis://h:6379/2?ssl_cert_reqs=none",
        "a",
    )
    assert split_url("unix:///run/redis.sock?db=3") == ("unix:///run/redis.sock?db=3", None)


def test_passwords_are_never_shown() -> None:
    assert shown("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert shown("redis://app:s3cret@h:6379/0") == "redis://app:***@h:6379/0"
    assert shown("redis://h:6379/0") == "redis://h:6379/0"


def test_check_refuses_other_urls_and_hides_the_password_of_unreachable_ones() -> None:
    with pytest.raises(SkyliftError, match="is not a Redis URL"):
        check("sqlite:///tmp/q.db")
    with pytest.raises(SkyliftError) as refused:
        check("redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in str(refused.value)
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in str(refused.value)
