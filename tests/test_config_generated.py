"""Generated settings: whatever text arrives for any option, loading answers with settings or one line."""

from __future__ import annotations

import string
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from il2watch import redact
from il2watch.config import OPTIONS, SCHEDULE_RANGE, ConfigError, load_settings, parse_interval

NUMBERISH = st.one_of(
    st.sampled_from(
        ["nan", "inf", "-inf", "1e309", "-0", "0", "1", "4s", "0.2", "99999999d", "1e3", "²", "٣", "0.5s", "0.0001s"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet=string.digits + ".eE+-smhd ", max_size=12),
)
ANY_TEXT = st.text(max_size=80)
URLISH = st.one_of(
    st.sampled_from(["http://[::1", "http://u:p@h:99999/", "https://h:0/", "http://h:abc/", "http:///x", "ftp://h/"]),
    st.builds(
        "".join,
        st.lists(
            st.one_of(
                st.sampled_from(
                    ["http://", "https://", "ftp://", "//", "u:p@", "[::1", "[::1]", "]", ":", "@", "/", "%"]
                ),
                st.sampled_from(["host.example.org", "127.0.0.1", " ", "\\", "\x7f", "?q=1", "#f"]),
                st.integers(min_value=-1, max_value=10**6).map(str),
            ),
            max_size=6,
        ),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_of_any_setting_loads_or_fails_with_one_line_naming_it(tmp_path, data):
    option = data.draw(st.sampled_from(OPTIONS))
    value = data.draw(st.one_of(NUMBERISH, ANY_TEXT, URLISH))
    if "\x00" in value:
        value = value.replace("\x00", "")
    remembered = redact.snapshot()
    try:
        loaded = load_settings({option.env: value}, tmp_path)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message and message.startswith(option.env), message
        return
    finally:
        redact.restore(remembered)  # made-up secrets must not mask text in the tests that follow
    assert_within_range(option, getattr(loaded, option.attr))


RANGED = [option for option in OPTIONS if option.kind in ("int", "float", "duration", "schedule", "url")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_setting_with_a_range_loads_only_within_it(tmp_path, data):
    """Numbers, durations, schedules and URLs: the values most likely to fall just outside their range."""
    option = data.draw(st.sampled_from(RANGED))
    value = data.draw(URLISH if option.kind == "url" else NUMBERISH).replace("\x00", "")
    remembered = redact.snapshot()
    try:
        loaded = load_settings({option.env: value}, tmp_path)
    except ConfigError as error:
        assert "\n" not in str(error) and str(error).startswith(option.env), str(error)
        return
    finally:
        redact.restore(remembered)
    assert_within_range(option, getattr(loaded, option.attr))


def assert_within_range(option, got) -> None:
    if option.kind in ("int", "float"):
        assert got == got and got not in (float("inf"), float("-inf"))  # never nan or inf
        assert option.low is None or got >= option.low
        assert option.high is None or got <= option.high
    if option.kind == "duration":
        assert got == 0 or SCHEDULE_RANGE[0] <= got <= SCHEDULE_RANGE[1], got
    if option.kind == "schedule" and parse_interval(got) is not None:
        assert SCHEDULE_RANGE[0] <= parse_interval(got) <= SCHEDULE_RANGE[1], got
    if option.kind == "url" and got:
        parts = urllib.parse.urlsplit(got)  # never raises for a URL that loaded
        assert parts.scheme in ("http", "https") and parts.hostname, got
        assert parts.port is None or 1 <= parts.port <= 65_535, got
