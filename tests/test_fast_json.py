"""The orjson fast path of parse_json_object gives exactly json.loads' value, or declines."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.tencent.platform import MAX_JSON_DEPTH, fast_json_object, parse_json_object


def same(a, b) -> bool:
    """Equal values of equal types all the way down (1 == 1.0 == True would hide a difference)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_what_orjson_reads_differently_is_left_to_json_loads():
    for body in (b'{"a": 18446744073709551616}', b'{"a": -9223372036854775809}', b'{"a": 1e400}',
                 b'{"a": "\\ud800"}', b'\xef\xbb\xbf{"a": 1}', '{"a": "x"}'.encode("utf-16"), b'{"a": NaN}',
                 b"[1, 2]", b"null", b"{" * 600 + b"}" * 600):
        assert fast_json_object(body) is None, body[:40]


def test_a_usual_body_takes_the_fast_path():
    body = '{"CallbackCommand": "C2C.CallbackBeforeSendMsg", "MsgBody": [{"MsgType": "TIMTextElem", ' \
           '"MsgContent": {"Text": "你好 \\u4e2d"}}], "MsgSeq": 48374, "X": -0.0, "Y": 1.5e3}'
    body = body.encode()
    fast = fast_json_object(body)
    assert fast is not None and same(fast, json.loads(body))
    assert same(parse_json_object(body, 1 << 20), json.loads(body))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 80), 1 << 80) | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=4), JSON, max_size=4), st.booleans(), st.booleans())
def test_where_the_fast_path_answers_it_is_json_loads_answer(value, ascii_only, duplicate):
    body = json.dumps(value, ensure_ascii=ascii_only)
    if duplicate and value:  # the last of two equal keys wins in both
        body = body[:-1] + ', "' + next(iter(value)).replace("\\", "\\\\").replace('"', '\\"') + '": 7}'
    raw = body.encode("utf-8", "surrogatepass")
    fast = fast_json_object(raw)
    if fast is not None:
        assert same(fast, json.loads(raw))


def test_depth_is_still_checked():
    deep = b'{"a":' + b"[" * (MAX_JSON_DEPTH + 5) + b"]" * (MAX_JSON_DEPTH + 5) + b"}"
    assert fast_json_object(deep) is None
