"""What il2watch.redact removes from text bound for logs, rows, terminals and Slack."""

import pytest

from il2watch import redact
from il2watch.config import load_settings


@pytest.mark.parametrize(
    "text, leaked",
    [
        ("https://user:pa55word@mirror.example/eutils/ is it reachable?", ["user", "pa55word"]),
        ("GET /esearch.fcgi?db=pubmed&api_key=abcdef0123&tool=il2watch", ["abcdef0123"]),
        ('HTTP 400: {"error":"API key invalid","api_key":"abcdef0123"}', ["abcdef0123"]),
        ("Authorization: Bearer sk-live-0123456789", ["sk-live-0123456789"]),
        ("token xoxb-1111-2222-abcdefgh and xapp-1-A0-1-ffff", ["xoxb-1111", "xapp-1-A0"]),
        ("postgresql://il2:hunter22@db.internal:5432/il2watch", ["hunter22"]),
    ],
)
def test_shapes_of_secrets_are_removed(text, leaked):
    cleaned = redact.scrub(text)
    assert "[redacted]" in cleaned
    for secret in leaked:
        assert secret not in cleaned


def test_ordinary_text_is_left_alone():
    text = "query_key=1&WebEnv=MCID_1 for lab@example.org: 3 new paper(s), https://pubmed.ncbi.nlm.nih.gov/1/"
    assert redact.scrub(text) == text


def test_configured_secrets_are_removed_wherever_they_appear(tmp_path):
    load_settings(
        {
            "NCBI_API_KEY": "ncbi-key-7f3a",
            "SLACK_SIGNING_SECRET": "sign-8c1d9e",
            "IL2WATCH_SUMMARISER_KEY": "llm-key-55aa",
            "IL2WATCH_EUTILS_URL": "https://mirroruser:mirrorpass@mirror.example/eutils/",
        },
        tmp_path,
    )
    text = "echo ncbi-key-7f3a, sign-8c1d9e, llm-key-55aa, mirrorpass and mirroruser, url-quoted ncbi-key-7f3a"
    cleaned = redact.scrub(text)
    for secret in ("ncbi-key-7f3a", "sign-8c1d9e", "llm-key-55aa", "mirrorpass", "mirroruser"):
        assert secret not in cleaned
