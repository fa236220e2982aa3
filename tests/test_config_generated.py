"""Generated settings: whatever text arrives for any option, loading answers with settings or one line."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from il2watch import redact
from il2watch.config import OPTIONS, ConfigError, load_settings

NUMBERISH = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-0", "0", "1", "4s", "0.2", "99999999d", "1e3", "²", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet=string.digits + ".eE+-smhd ", max_size=12),
)
ANY_TEXT = st.text(max_size=80)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_value_of_any_setting_loads_or_fails_with_one_line_naming_it(tmp_path, data):
    option = data.draw(st.sampled_from(OPTIONS))
    value = data.draw(st.one_of(NUMBERISH, ANY_TEXT))
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
    got = getattr(loaded, option.attr)
    if option.kind in ("int", "float"):
        assert got == got and got not in (float("inf"), float("-inf"))  # never nan or inf
        assert option.low is None or got >= option.low
        assert option.high is None or got <= option.high
