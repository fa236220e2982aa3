"""Convert PubMed's marked text into plain Unicode or safe Slack mrkdwn.

Marked text (see ``il2watch.model``) is HTML-escaped text with PubMed's inline tags. Any
other tag-like text is shown as text. Both conversions drop control and bidi-override
characters, which can hide or reorder what a reader sees.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<(/?)(i|b|u|sup|sub)>", re.IGNORECASE)
# C0/C1 controls except tab and newline, bidi marks/embeddings/overrides/isolates, zero-width space, word
# joiner and invisible math operators, BOM. The joiners stay in what is shown (emoji sequences need the
# zero-width joiner, Persian and Indic text the non-joiner); ``strip_invisible(joiners=True)`` drops them
# from what is compared, such as a command's words.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_JOINERS = re.compile("[\u200c\u200d]")


def strip_invisible(text: str, *, joiners: bool = False) -> str:
    """Text without the characters that hide or reorder what a reader sees (and the joiners, if asked)."""
    cleaned = _INVISIBLE.sub("", text)
    return _JOINERS.sub("", cleaned) if joiners else cleaned


# Characters with a Unicode superscript or subscript form. Symbols that print raised anyway (® ™ ° † ‡)
# stay as they are in a superscript.
_SUPERSCRIPT = dict(zip("0123456789+-−=()ni ", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱ ")) | {c: c for c in "®™°†‡§′″*"}
_SUBSCRIPT = dict(zip("0123456789+-−=()aeoxhklmnpstijruvβγρφχ ", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜᵢⱼᵣᵤᵥᵦᵧᵨᵩᵪ "))
# A script some character of which has no Unicode form is shown between these brackets: ⁽…⁾ raised, ₍…₎
# lowered. Neither is a Slack formatting marker (``_`` ``*`` ``~`` `` ` ``), so no script can turn text italic.
_BRACKETS = {"sup": ("⁽", "⁾"), "sub": ("₍", "₎")}
_SCRIPTS = {"sup": _SUPERSCRIPT, "sub": _SUBSCRIPT}


def _script(text: str, kind: str) -> str:
    """Unicode super/subscript when every character has one, else the text between script brackets."""
    table = _SCRIPTS[kind]
    if all(ch in table for ch in text):
        return "".join(table[ch] for ch in text)
    opening, closing = _BRACKETS[kind]
    return f"{opening}{text}{closing}"


# ---------------------------------------------------------------- MathML

# PubMed abstracts carry formulas as MathML (Bio.Entrez hands them on as raw tags, without their alttext);
# they are read out as the characters they hold, with sub- and superscripts as inline tags.
# A formula is found by its opening tag and then the first closing tag after it, each searched once
# (one lazy pattern for both would scan to the end of the text again from every unclosed ``<math>``). No
# tag's attributes hold ``<``, so no search runs past the next tag either.
_MATH_OPEN = re.compile(r"<(?:mml:)?math\b[^<>]*>", re.IGNORECASE)
_MATH_CLOSE = re.compile(r"</(?:mml:)?math>", re.IGNORECASE)
# Formulas are read recursively; tags nested deeper than this are read as plain rows (real MathML is a
# few levels deep), so a hostile formula cannot exhaust Python's stack.
_MATH_DEPTH = 64
_MATH_TOKEN = re.compile(r"<(/?)(?:[A-Za-z][\w.-]*:)?([A-Za-z][\w.-]*)([^>]*?)(/?)>|([^<]+)")
_DISPLAY_WRAPPER = re.compile(r"</?DispFormula\b[^<>]*>", re.IGNORECASE)
_SPACED_OPERATORS = {"=", "≠", "≈", "≤", "≥", "&lt;", "&gt;", "±", "×", "→", "⇒", "∈", "≡"}
_SILENT = {"annotation", "annotation-xml", "none", "mprescripts", "mphantom"}


def _math_tree(fragment: str) -> list:
    """Nested [tag, attributes, children] lists (and text strings) from a MathML fragment."""
    root: list = ["", "", []]
    stack = [root]
    too_deep = 0  # tags opened beyond _MATH_DEPTH and not yet closed: they add no level
    for closing, tag, attributes, empty, text in _MATH_TOKEN.findall(fragment):
        if text:
            stack[-1][2].append(text)
        elif closing and too_deep:
            too_deep -= 1
        elif closing:
            while len(stack) > 1:
                if stack.pop()[0] == tag.lower():
                    break
        elif len(stack) > _MATH_DEPTH:
            too_deep += not empty
        else:
            node = [tag.lower(), attributes, []]
            stack[-1][2].append(node)
            if not empty:
                stack.append(node)
    return root[2]


def _attribute(attributes: str, name: str, default: str) -> str:
    found = re.search(rf'\b{name}\s*=\s*"([^"]*)"', attributes)
    return found.group(1) if found else default


def _math_text(nodes: list, *, flat: bool = False) -> str:
    """Marked text for MathML nodes; ``flat`` (inside a script) leaves out nested scripts' tags."""
    return "".join(_math_node(node, flat=flat) for node in nodes)


def _grouped(text: str) -> str:
    plain = _TAG.sub("", text)
    return text if len(plain) <= 1 or plain.isalnum() else f"({text})"


def _math_node(node: str | list, *, flat: bool) -> str:
    if isinstance(node, str):
        return " ".join(node.split())
    tag, attributes, children = node
    parts = [_math_node(child, flat=flat) for child in children if not isinstance(child, str) or child.strip()]
    if tag in _SILENT:
        return ""
    if tag == "semantics":
        return parts[0] if parts else ""
    if tag == "mo":
        operator = "".join(parts).strip()
        return f" {operator} " if operator in _SPACED_OPERATORS and not flat else operator
    if tag == "mspace":
        return " "
    if tag in ("msub", "msup", "msubsup") and parts:
        scripts = [_math_node(child, flat=True) for child in children if not isinstance(child, str)][1:]
        if flat:
            return parts[0] + "".join(scripts)
        kinds = {"msub": ["sub"], "msup": ["sup"], "msubsup": ["sub", "sup"]}[tag]
        return parts[0] + "".join(f"<{kind}>{text}</{kind}>" for kind, text in zip(kinds, scripts) if text)
    if tag == "mfrac" and len(parts) == 2:
        return f"{_grouped(parts[0])}/{_grouped(parts[1])}"
    if tag == "msqrt":
        return "√" + _grouped("".join(parts))
    if tag == "mroot" and len(parts) == 2:
        index = _math_node(children[-1], flat=True) if not isinstance(children[-1], str) else parts[1]
        return (index if flat else f"<sup>{index}</sup>") + "√" + _grouped(parts[0])
    if tag == "mfenced":
        separator = _attribute(attributes, "separators", ",")[:1] or ","
        opening, closing = _attribute(attributes, "open", "("), _attribute(attributes, "close", ")")
        return opening + separator.join(parts) + closing
    if tag == "mtr":
        return ", ".join(parts)
    if tag == "mtable":
        return "; ".join(parts)
    return "".join(parts)


def _read_math(fragment: str) -> str:
    text = " ".join(_math_text(_math_tree(fragment)).split())
    if not _TAG.sub("", text).strip():
        text = html.escape(html.unescape(_attribute(fragment, "alttext", "")), quote=False)
    return text.strip()


def read_mathml(marked: str) -> str:
    """Marked text with its MathML formulas turned into characters and inline sub/superscript tags."""
    if "math" not in marked and "DispFormula" not in marked:
        return marked
    pieces, pos = [], 0
    while (opening := _MATH_OPEN.search(marked, pos)) and (closing := _MATH_CLOSE.search(marked, opening.end())):
        pieces += [marked[pos : opening.start()], _read_math(marked[opening.start() : closing.end()])]
        pos = closing.end()
    pieces.append(marked[pos:])
    return _DISPLAY_WRAPPER.sub("", "".join(pieces))


def _convert(marked: str, *, italic: str, bold: str, escape: bool) -> str:
    marked = read_mathml(marked)
    out: list[str] = []
    pos = 0
    open_tags: list[str] = []
    # How many of each tag are open: what ``in open_tags`` would say, in constant time, so hostile markup
    # with thousands of unclosed tags converts in time proportional to its length.
    open_count = dict.fromkeys(("i", "b", "u", "sup", "sub"), 0)
    buffer: list[str] = []  # text collected inside the outermost <sup>/<sub>
    script = ""  # "sup" or "sub" while inside one; styles and nested scripts inside it are dropped

    def text(raw: str) -> str:
        plain = strip_invisible(html.unescape(raw))
        if escape:
            plain = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return plain

    def emit(piece: str) -> None:
        (buffer if script else out).append(piece)

    def style(tag: str) -> str:
        return "" if script else italic if tag == "i" else bold if tag == "b" else ""

    def close(tag: str) -> None:
        nonlocal script, buffer
        if tag == script and not open_count[script]:
            out.append(_script("".join(buffer), script))
            script, buffer = "", []
        elif tag in ("i", "b", "u"):
            emit(style(tag))

    for match in _TAG.finditer(marked):
        emit(text(marked[pos : match.start()]))
        pos = match.end()
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if not closing:
            if tag in ("sup", "sub") and not script:
                script, buffer = tag, []
            else:
                emit(style(tag))
            open_tags.append(tag)
            open_count[tag] += 1
        elif open_count[tag]:
            while open_tags:
                top = open_tags.pop()
                open_count[top] -= 1
                close(top)
                if top == tag:
                    break
    emit(text(marked[pos:]))
    while open_tags:  # unbalanced markup: close what is open so nothing leaks
        top = open_tags.pop()
        open_count[top] -= 1
        close(top)
    if script:
        out.append("".join(buffer))
    return "".join(out)


def to_plain(marked: str) -> str:
    """Plain Unicode text: for search, summaries and terminal output."""
    return _convert(marked, italic="", bold="", escape=False)


def to_mrkdwn(marked: str) -> str:
    """Slack mrkdwn: italics and bold kept, everything else shown literally and pinging no one."""
    return _convert(marked, italic="_", bold="*", escape=True)


def escape_mrkdwn(plain: str) -> str:
    """Make plain text from outside safe for a mrkdwn field: no mentions, links or hidden text."""
    cleaned = strip_invisible(plain)
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SPACE = re.compile(r"\s+")


def squash(text: str) -> str:
    """Collapse runs of whitespace (PubMed records carry newlines and double spaces)."""
    return _SPACE.sub(" ", text).strip()


def counted(count: int, noun: str, plural: str = "") -> str:
    """'1 paper', '2 papers', '1,204 papers': every count il2watch shows is said this way."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
