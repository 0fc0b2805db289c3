"""Student data at the grader's boundary: text, sandbox replies and notebook markdown, made safe once.

Everything here is pure and fast (no sandbox, no files):

- :func:`clean` replaces lone surrogates (``"\\ud800"``, which JSON escapes can carry but no file can
  encode) in every string of a value, so that writing a student's output, traceback, id or answer can
  never raise ``UnicodeEncodeError`` in export, feedback or the gradebook;
- :func:`loads_limited` decodes one JSON reply of the sandbox with a nesting limit checked *before*
  parsing (no recursion a reply can exhaust); NaN and infinities arrive as Python's JSON writes them;
- :func:`sanitize_markdown` and :func:`sanitize_html` make a student's Markdown or raw cell safe to
  show on the instructor's formgrader page, which renders Markdown with nbconvert and passes raw HTML
  through: the result is checked on nbconvert's own rendering, not on a guess of it.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser

import numpy as np

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_REPLY_DEPTH = 64


# ----------------------------------------------------------------------------- text


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (valid pairs never survive ``json.loads`` unpaired)."""
    return _SURROGATE.sub("\ufffd", text)


def has_surrogate_escape(data: bytes) -> bool:
    """Might the JSON text ``data`` hold a lone surrogate? (Only as a ``\\uD8xx``-style escape: UTF-8 cannot.)"""
    return _SURROGATE_ESCAPE.search(data) is not None


def clean(value):
    """``value`` (JSON-like data) with every string, dict keys included, passed through :func:`clean_text`.

    Iterative (no nesting depth can make it fail) and in place for lists and dicts.
    """
    if isinstance(value, str):
        return clean_text(value)
    stack = [value] if isinstance(value, (list, dict)) else []
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(isinstance(k, str) and _SURROGATE.search(k) for k in item):
                fixed = {clean_text(k) if isinstance(k, str) else k: v for k, v in item.items()}
                item.clear()
                item.update(fixed)
            entries = item.items()
        else:
            entries = enumerate(item)
        for k, child in entries:
            if isinstance(child, str):
                if _SURROGATE.search(child):
                    item[k] = clean_text(child)
            elif isinstance(child, (list, dict)):
                stack.append(child)
    return value


# ----------------------------------------------------------------------------- sandbox replies

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


class ReplyError(ValueError):
    """A reply that is not one JSON object within the limits: a protocol error of that submission."""


def json_depth(data: bytes) -> int:
    """The bracket nesting depth of the JSON text ``data`` (strings skipped), computed without recursion."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, delete=bytes(set(range(256)) - set(b"[]{}")))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def loads_limited(data: bytes, max_depth: int = MAX_REPLY_DEPTH) -> dict:
    """One sandbox reply as a dict with its strings cleaned, or :class:`ReplyError`."""
    depth = json_depth(data)
    if depth > max_depth:
        raise ReplyError(f"the reply is nested {depth} levels deep (the limit is {max_depth})")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise ReplyError(f"the reply is not JSON ({type(err).__name__})") from None
    if not isinstance(message, dict):
        raise ReplyError("the reply is not a JSON object")
    if has_surrogate_escape(data):  # the runner's JSON is ASCII: a lone surrogate can only come escaped
        message = clean(message)
    return message


# ----------------------------------------------------------------------------- HTML shown to the instructor

_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "b", "i", "u", "s", "del", "code", "pre", "blockquote", "ul", "ol",
    "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "img",
    "sub", "sup", "span", "div", "dl", "dt", "dd", "kbd",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"align", "style", "colspan", "rowspan"},
    "td": {"align", "style", "colspan", "rowspan"},
    "ol": {"start"},
}
_GLOBAL_ATTRIBUTES = {"class"}  # pygments' highlighting and nbconvert's anchor links
_HEADING_ATTRIBUTES = {"id"}  # nbconvert gives headings an id for their anchor link
_SAFE_ATTRIBUTE_VALUE = {
    "style": re.compile(r"text-align:\s*(left|right|center);?", re.I),
    "class": re.compile(r"[\w -]{0,100}"),
    "align": re.compile(r"left|right|center", re.I),
}
_URL_SCHEMES = {"href": {"http", "https", "mailto"}, "src": {"http", "https", "attachment"}}
_SAFE_DATA_IMAGE = re.compile(r"data:image/(png|gif|jpeg|webp)[;,]")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")  # browsers drop tabs and newlines anywhere, and strip the rest


def url_is_safe(attribute: str, value: str) -> bool:
    """May ``value`` be the ``href``/``src`` of a link or image on the instructor's page? No script schemes."""
    squeezed = _URL_NOISE.sub("", html.unescape(value)).lower()
    scheme = re.match(r"([a-z][a-z0-9+.-]*):", squeezed)
    if scheme is None:
        return True  # relative: a path on the same server, or a #fragment
    if attribute == "src" and _SAFE_DATA_IMAGE.match(squeezed):
        return True
    return scheme.group(1) in _URL_SCHEMES[attribute]


class _Checker(HTMLParser):
    """Collects why an HTML fragment is unsafe: only listed tags and attributes, safe URLs, no raw ``<``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in _ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
            return
        for name, value in attrs:
            allowed = _ALLOWED_ATTRIBUTES.get(tag, set()) | _GLOBAL_ATTRIBUTES
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                allowed = allowed | _HEADING_ATTRIBUTES
            if name not in allowed:
                self.problems.append(f"<{tag} {name}=>")
            elif name in _URL_SCHEMES and not url_is_safe(name, value or ""):
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif name in _SAFE_ATTRIBUTE_VALUE and not _SAFE_ATTRIBUTE_VALUE[name].fullmatch((value or "").strip()):
                self.problems.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag not in _ALLOWED_TAGS:
            self.problems.append(f"</{tag}>")

    def handle_data(self, data):
        if "<" in data:  # text this parser did not read as a tag, which a browser might
            self.problems.append("a bare '<'")

    def handle_comment(self, data):
        self.problems.append("an HTML comment")

    def handle_decl(self, decl):
        self.problems.append("a declaration")

    def handle_pi(self, data):
        self.problems.append("a processing instruction")

    def unknown_decl(self, data):
        self.problems.append("a CDATA section")


def html_problems(fragment: str) -> list[str]:
    """What makes ``fragment`` unsafe to insert into the instructor's page (empty: safe)."""
    checker = _Checker()
    try:
        checker.feed(fragment)
        checker.close()
    except Exception as err:  # noqa: BLE001 - whatever the parser cannot read is unsafe
        checker.problems.append(f"unparsable ({type(err).__name__})")
    if checker.rawdata:
        checker.problems.append("an unfinished tag")
    return checker.problems


def render_markdown(source: str) -> str:
    """Markdown as formgrader shows it: nbconvert's ``markdown2html`` (mistune; raw HTML passes through)."""
    from nbconvert.filters.markdown import markdown2html

    return markdown2html(source)


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_CODE_OR_MATH = re.compile(r"(`+)[\s\S]*?\1|\$\$[\s\S]*?\$\$|\$[^$\n]+\$")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n[\s\S]*?(^\1?\2[ \t]*$|\Z)", re.M)
_LINK_DESTINATION = re.compile(r"\]\(")
_REFERENCE_DEFINITION = re.compile(r"^( {0,3})\[", re.M)


def _escape_markup(source: str) -> str:
    """Escape raw HTML (``<`` before a letter, ``/``, ``!``, ``?``) and break link syntax, outside code and math."""
    out, last = [], 0
    protected = sorted(
        [(m.start(), m.end()) for m in _FENCE.finditer(source)]
        + [(m.start(), m.end()) for m in _CODE_OR_MATH.finditer(source)]
    )
    for start, end in protected:
        if start < last:
            continue
        out.append(_escape_plain(source[last:start]))
        out.append(source[start:end])
        last = end
    out.append(_escape_plain(source[last:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    text = _TAG_START.sub("&lt;", text)
    text = _LINK_DESTINATION.sub("]\u200b(", text)  # "[a](url)" stays readable but is no longer a link
    return _REFERENCE_DEFINITION.sub(lambda m: m.group(1) + "\\[", text)


def _as_preformatted(source: str) -> str:
    return "<pre>" + html.escape(source, quote=True) + "</pre>"


def sanitize_markdown(source: str) -> str:
    """``source`` (a student's Markdown cell) made safe for the formgrader page, as readable as possible.

    Unchanged when nbconvert renders it to safe HTML (text, math, lists, code, bold, plain links);
    otherwise its raw HTML tags are shown as text and script links are no longer links; if even that
    does not render safely, the whole cell is shown as preformatted text.
    """
    source = clean_text(source)
    if not html_problems(render_markdown(source)):
        return source
    escaped = _escape_markup(source)
    if not html_problems(render_markdown(escaped)):
        return escaped
    return _as_preformatted(source)


def sanitize_html(source: str) -> str:
    """A student's raw cell (nbconvert passes it into the HTML page as is): unchanged if safe, else shown as text."""
    source = clean_text(source)
    return source if not html_problems(source) else _as_preformatted(source)
