"""A leaderboard as one self-contained static HTML page (``index.html``).

The leaderboard's Markdown through ``markdown-it-py`` (CommonMark and pipe tables; raw HTML in the
text stays text), with the figures its Markdown shows (``![title](figures/x.png)``) embedded as
base64 data URIs where they appear, once; CSS and JS inlined: no network, no CDN, readable offline
and on a phone (tables scroll sideways in their own wrapper). A table's caption (the italic line
right above it) becomes its ``<caption>``. Every table sorts by a click on a column header: numbers
by their first number ("71.2 ± 0.3" sorts as 71.2), missing cells ("–", empty) last either way,
rows whose label is bold (averages) kept at the bottom. The same input gives byte-identical output.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

_NUMBER = re.compile(r"[-+−]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_MISSING = {"", "–", "—", "-", "n/a", "NA"}


def render_html(markdown_text: str, images: Mapping[str, Path] | list[Path], title: str) -> str:
    """The whole page. ``images`` maps an image source in the Markdown (``figures/x.png``) to the
    file embedded in its place; a list of files is embedded in a "Figures" section at the end
    (for Markdown that does not show them itself)."""
    if not isinstance(images, Mapping):
        files = [Path(f) for f in images]
        images = {f"figure-{i}/{f.name}": f for i, f in enumerate(files)}
        if files:
            markdown_text = (
                markdown_text.rstrip()
                + "\n\n## Figures\n\n"
                + "".join(f"![{figure_title(f)}]({src})\n\n" for src, f in images.items())
            )
    body = markdown_to_html(markdown_text, images)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="xltransfer">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def markdown_to_html(text: str, images: Mapping[str, Path] | None = None) -> str:
    """Markdown to the page's HTML (every piece of text escaped; ``images`` embedded)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    _anchor_headings(tokens)
    _shape_tables(tokens, md)
    _shape_figures(tokens, images or {})
    md.add_render_rule("table_open", _render_table_open)
    md.add_render_rule("table_close", _render_table_close)
    md.add_render_rule("th_open", _render_th_open)
    md.add_render_rule("th_close", _render_th_close)
    md.add_render_rule("paragraph_open", _render_paragraph_open)
    md.add_render_rule("paragraph_close", _render_paragraph_close)
    md.add_render_rule("image", _render_image)
    return md.renderer.render(tokens, md.options, {})


# -- token shaping ------------------------------------------------------------------------------


def _inline_text(token: Token) -> str:
    """The visible text of an inline token (markup dropped)."""
    return "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline"))


def _anchor_headings(tokens: list[Token]) -> None:
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", _anchor(_inline_text(tokens[i + 1]), seen))


def _shape_tables(tokens: list[Token], md: MarkdownIt) -> None:
    """Caption, accessible name, row headers, summary rows and number columns of every table."""
    heading = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            heading = _inline_text(tokens[i + 1])
        if token.type != "table_open":
            i += 1
            continue
        caption = ""
        if i >= 3 and tokens[i - 1].type == "paragraph_close" and _is_emphasis(tokens[i - 2]):
            caption = md.renderer.renderInline(tokens[i - 2].children[1:-1], md.options, {})
            del tokens[i - 3 : i]
            i -= 3
            token = tokens[i]
        token.meta["caption"] = caption
        token.meta["label"] = html.unescape(re.sub(r"<[^>]+>", "", caption)) or heading or "table"
        end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
        _shape_cells(tokens[i:end])
        i = end + 1


def _is_emphasis(inline: Token) -> bool:
    children = inline.children or []
    return (
        inline.type == "inline"
        and len(children) >= 3
        and children[0].type == "em_open"
        and children[-1].type == "em_close"
        and not any(c.type == "em_open" for c in children[1:-1])
    )


def _shape_cells(tokens: list[Token]) -> None:
    rows: list[list[int]] = []  # per row, the indices of its cell-open tokens
    for k, token in enumerate(tokens):
        if token.type == "tr_open":
            rows.append([])
        elif token.type in ("th_open", "td_open"):
            rows[-1].append(k)
    width = max((len(r) for r in rows), default=0)
    texts = [[_inline_text(tokens[k + 1]) for k in row] for row in rows]
    numeric = [j > 0 and _numeric_column([row[j] for row in texts[1:] if j < len(row)]) for j in range(width)]
    for r, row in enumerate(rows):
        for j, k in enumerate(row):
            cell = tokens[k]
            align = (cell.attrs or {}).pop("style", "")
            if "right" in align or (not align and numeric[j]):
                cell.attrSet("class", "num")
            elif "center" in align:
                cell.attrSet("style", "text-align:center")
            if r == 0:
                cell.meta["header"] = True
                cell.attrSet("scope", "col")
            elif j == 0:
                cell.tag = "th"
                tokens[k + 2].tag = "th"
                cell.attrSet("scope", "row")
        first = [c for c in tokens[row[0] + 1].children or [] if c.content or c.type != "text"] if row else []
        if r > 0 and first and first[0].type == "strong_open":
            tr = next(t for t in reversed(tokens[: row[0]]) if t.type == "tr_open")
            tr.attrSet("class", "summary")


def _numeric_column(cells: list[str]) -> bool:
    """Every cell a number (first thing in it) or missing, and at least one number."""
    values = [c.strip() for c in cells if c.strip() not in _MISSING]
    return bool(values) and all(_NUMBER.match(c) for c in values)


def _shape_figures(tokens: list[Token], images: Mapping[str, Path]) -> None:
    """A paragraph holding one embedded image alone becomes a figure with a caption."""
    for i, token in enumerate(tokens):
        if token.type != "inline" or not token.children:
            continue
        for child in token.children:
            if child.type == "image" and child.attrGet("src") in images:
                child.meta["file"] = images[str(child.attrGet("src"))]
        if len(token.children) == 1 and "file" in token.children[0].meta:
            tokens[i - 1].meta["figure"] = tokens[i + 1].meta["figure"] = True


# -- rendering ------------------------------------------------------------------------------------


def _render_table_open(self, tokens, idx, options, env) -> str:
    meta = tokens[idx].meta
    label = html.escape(meta.get("label") or "table", quote=True)
    caption = f"<caption>{meta['caption']}</caption>\n" if meta.get("caption") else ""
    return (
        f'<div class="table-wrap" role="region" tabindex="0" aria-label="{label}">\n'
        f'<table class="sortable">\n{caption}'
    )


def _render_table_close(self, tokens, idx, options, env) -> str:
    return "</table>\n</div>\n"


def _render_th_open(self, tokens, idx, options, env) -> str:
    opened = self.renderToken(tokens, idx, options, env)
    return opened + '<button type="button">' if tokens[idx].meta.get("header") else opened


def _render_th_close(self, tokens, idx, options, env) -> str:
    opening = next(t for t in reversed(tokens[:idx]) if t.type == "th_open")
    closed = self.renderToken(tokens, idx, options, env)
    return "</button>" + closed if opening.meta.get("header") else closed


def _render_paragraph_open(self, tokens, idx, options, env) -> str:
    return "<figure>\n" if tokens[idx].meta.get("figure") else self.renderToken(tokens, idx, options, env)


def _render_paragraph_close(self, tokens, idx, options, env) -> str:
    if not tokens[idx].meta.get("figure"):
        return self.renderToken(tokens, idx, options, env)
    inline = tokens[idx - 1].children[0]
    path = inline.meta["file"]
    alt = "".join(c.content for c in inline.children or [])
    return (
        f'\n<figcaption>{html.escape(alt)} <span class="file">({html.escape(path.name)})</span>'
        "</figcaption>\n</figure>\n"
    )


def _render_image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = "".join(c.content for c in token.children or [])
    path = token.meta.get("file")
    if path is None:
        src = html.escape(str(token.attrGet("src")), quote=True)
        return f'<img src="{src}" alt="{html.escape(alt, quote=True)}">'
    data = Path(path).read_bytes()
    mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else mimetypes.guess_type(str(path))[0]
    size = ""
    if mime == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        size = f' width="{width}" height="{height}"'
    uri = f"data:{mime or 'application/octet-stream'};base64,{base64.b64encode(data).decode('ascii')}"
    return f'<img src="{uri}" alt="{html.escape(alt, quote=True)}"{size}>'


def _anchor(text: str, seen: dict[str, int]) -> str:
    base = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-") or "section"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def figure_title(path: Path) -> str:
    """A figure's title: its PNG ``Title`` text chunk, else a description from its file name."""
    data = Path(path).read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        chunks = _png_text(data)
        found = chunks.get("Title") or chunks.get("Description")
        if found:
            return found
    return _describe(Path(path))


def _describe(path: Path) -> str:
    """bars-pos-zero-shot.png -> "Bar chart: pos zero-shot" (a fallback alt text)."""
    kinds = {
        "bars": "Bar chart per target language",
        "efficiency": "Efficiency vs performance",
        "few-shot": "Few-shot curve",
        "language-map": "Language map",
    }
    stem = path.stem
    for prefix, kind in kinds.items():
        if stem == prefix:
            return kind
        if stem.startswith(prefix + "-"):
            return f"{kind}: {stem[len(prefix) + 1 :]}"
    return f"Figure: {stem}"


def _png_text(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG: tEXt (Latin-1) and iTXt (UTF-8, possibly zlib-compressed)."""
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            key, _, value = chunk.partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = chunk.partition(b"\0")
            compressed, text = rest[:1] == b"\1", rest[2:].split(b"\0", 2)[-1]
            try:
                found[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
            except (zlib.error, UnicodeDecodeError):
                pass
        if kind == b"IEND":
            break
        pos += 12 + length
    return found


_CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de;
  --stripe: #f6f8fa; --head: #eef1f4; --accent: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --stripe: #161b22;
    --head: #1c2128; --accent: #4493f8; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.5;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.75rem; padding-bottom: 0.25rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 0.5rem; }
p, ul { margin: 0 0 1rem; overflow-wrap: anywhere; }
code { font: 0.875em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--stripe);
  padding: 0.1em 0.3em; border-radius: 4px; overflow-wrap: anywhere; }
pre { background: var(--stripe); border: 1px solid var(--line); border-radius: 6px; padding: 0.75rem;
  overflow-x: auto; margin: 0 0 1rem; }
pre code { background: none; padding: 0; overflow-wrap: normal; white-space: pre; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 0.85rem;
  padding: 0.4rem 0.6rem; }
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 0 0 1.25rem;
  border: 1px solid var(--line); border-radius: 6px; max-width: 100%; }
.table-wrap:focus { outline: 2px solid var(--accent); outline-offset: 2px; }
table { border-collapse: collapse; width: max-content; min-width: 100%; font-size: 0.9rem; }
th, td { padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; background: var(--bg); }
tbody tr:nth-child(even) > * { background: var(--stripe); }
thead th { background: var(--head); }
th:first-child, td:first-child { position: sticky; left: 0; z-index: 1; }
thead th:first-child { z-index: 2; }
tbody th { font-weight: normal; }
tr.summary > * { border-top: 2px solid var(--line); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th button { all: inherit; display: block; width: 100%; padding: 0; cursor: pointer;
  font-weight: 600; white-space: nowrap; }
thead th button:focus-visible { outline: 2px solid var(--accent); }
thead th button::after { content: " \\2195"; color: var(--muted); font-size: 0.8em; }
thead th[aria-sort="ascending"] button::after { content: " \\25B2"; color: var(--accent); }
thead th[aria-sort="descending"] button::after { content: " \\25BC"; color: var(--accent); }
figure { margin: 0 0 2rem; }
figure img { display: block; max-width: 100%; height: auto; background: #fff; border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 0.35rem; }
figcaption .file { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
@media (max-width: 600px) {
  main { padding: 0.6rem; } body { font-size: 15px; } th, td { padding: 0.3rem 0.45rem; }
}
"""

_JS = r"""
(function () {
  "use strict";
  var NUMBER = /[-+\u2212]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/;
  var MISSING = { "": 1, "\u2013": 1, "\u2014": 1, "-": 1, "n/a": 1, "NA": 1 };
  var collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
  function key(cell) {
    var text = cell ? cell.textContent.trim() : "";
    if (MISSING.hasOwnProperty(text)) return { missing: true, text: text };
    var m = text.match(NUMBER);
    return { missing: false, text: text, number: m ? parseFloat(m[0].replace("\u2212", "-")) : null };
  }
  function sortBy(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var data = rows.filter(function (r) { return !r.classList.contains("summary"); });
    var fixed = rows.filter(function (r) { return r.classList.contains("summary"); });
    var keyed = data.map(function (row, i) { return { row: row, i: i, k: key(row.cells[col]) }; });
    var numeric = keyed.every(function (e) { return e.k.missing || e.k.number !== null; });
    keyed.sort(function (a, b) {
      if (a.k.missing !== b.k.missing) return a.k.missing ? 1 : -1;
      if (a.k.missing) return a.i - b.i;
      var d = numeric ? a.k.number - b.k.number : collator.compare(a.k.text, b.k.text);
      if (d === 0) return a.i - b.i;
      return ascending ? d : -d;
    });
    keyed.forEach(function (e) { body.appendChild(e.row); });
    fixed.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortBy(table, th, col); });
    });
  });
})();
"""
