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
        # NCBI's answer to a key it rejects, never configured here
        ('{"error":"API key invalid","api-key":"0a1b2c3d4e5f","type":"invalid"}', ["0a1b2c3d4e5f"]),
        ("https://api.openalex.org/works?filter=cites:W1&api_key=oa-key-9911", ["oa-key-9911"]),
        ("the library /srv/postgresql:/il2:hunter22@db/il2watch.db is locked", ["hunter22"]),  # through pathlib
        ("Authorization: Basic dXNlcjpwYXNz", ["dXNlcjpwYXNz"]),
        ("{'Authorization': 'Bearer abc'}", ["abc"]),
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
    prose = "Basic research on IL-2; the Bearer of the key residue; mailto:lab@example.org; file:/srv/a:b/c"
    assert redact.scrub(prose) == prose


def test_credentials_are_found_in_any_url_even_one_pathlib_has_shortened():
    assert set(redact.url_secrets("https://mirror%40user:p%40ss@mirror.example/")) == {
        "mirror%40user",
        "mirror@user",
        "p%40ss",
        "p@ss",
    }
    assert redact.url_secrets("/srv/postgresql:/il2user:hunter22@db/x.db") == [
        "il2user",
        "il2user",
        "hunter22",
        "hunter22",
    ]
    assert redact.url_secrets("https://eutils.ncbi.nlm.nih.gov/entrez/eutils/") == []


def test_every_string_of_a_message_is_scrubbed():
    message = {"text": "key xoxb-1-2-3", "blocks": [{"type": "section", "text": {"text": "api_key=abc123"}}], "n": 3}
    assert redact.scrub_all(message) == {
        "text": "key [redacted]",
        "blocks": [{"type": "section", "text": {"text": "api_key=[redacted]"}}],
        "n": 3,
    }


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
