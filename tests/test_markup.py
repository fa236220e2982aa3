from il2watch.markup import escape_mrkdwn, squash, to_mrkdwn, to_plain


def test_plain_turns_inline_markup_into_unicode():
    marked = "r<sup>2</sup>&lt;0.25 at <i>TERT</i>, CD4<sup>+</sup> cells, IL-2R<sub>β</sub>"
    assert to_plain(marked) == "r²<0.25 at TERT, CD4⁺ cells, IL-2R_β"


def test_subscript_without_unicode_form_keeps_a_marker():
    assert to_plain("p<sub>trend</sub>=0.048") == "p_trend=0.048"
    assert to_plain("x<sup>a b c</sup>") == "x^(a b c)"


def test_mrkdwn_escapes_mentions_and_links_but_keeps_italics():
    marked = "&lt;!channel&gt; &lt;https://evil.example|PubMed&gt; <i>in vivo</i> &amp; <b>more</b>"
    assert to_mrkdwn(marked) == ("&lt;!channel&gt; &lt;https://evil.example|PubMed&gt; _in vivo_ &amp; *more*")


def test_unbalanced_tags_are_closed_and_stray_closers_ignored():
    assert to_mrkdwn("<i>open") == "_open_"
    assert to_plain("a</i>b</sup>") == "ab"


def test_invisible_and_bidi_characters_are_dropped():
    assert escape_mrkdwn("a\u202eb\u0000c<@U123>") == "abc&lt;@U123&gt;"
    assert to_plain("x\u2066y") == "xy"


def test_squash_collapses_whitespace():
    assert squash("  a\n  b\t c ") == "a b c"
