"""A leaderboard as one self-contained static HTML page (``index.html``).

Converts exactly the Markdown subset that ``leaderboard_markdown`` writes (``#``/``##``/``###``
headings, paragraphs, pipe tables with a header separator row, ``-``/``*`` bullet lists, inline
``code`` and ``**bold**``), embeds figures as base64 data URIs, and inlines its CSS and JS: no
network, no CDN, readable offline and on a phone (tables scroll sideways in their own wrapper).
Every table sorts by a click on a column header: numbers by their first number ("71.2 ± 0.3"
sorts as 71.2), missing cells ("–", empty) last either way, rows in bold (average rows) kept at
the bottom. The same input gives byte-identical output.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
import struct
import zlib
from pathlib import Path

_HEADING = re.compile(r"^(#{1,3})\s+(.*?)(?:\s+#+)?\s*$")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_NUMBER = re.compile(r"[-+−]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_MISSING = {"", "–", "—", "-", "n/a", "NA"}


def render_html(markdown_text: str, figures: list[Path], title: str) -> str:
    """The whole page: ``markdown_text`` converted, then a "Figures" section with each of
    ``figures`` (PNG, or any image type ``mimetypes`` knows) inlined. A PNG's alt text is its
    ``Title`` text chunk when it has one, else a description from its file name."""
    body = markdown_to_html(markdown_text)
    if figures:
        items = [_figure(Path(f)) for f in figures]
        body += '<section class="figures" aria-labelledby="figures">\n<h2 id="figures">Figures</h2>\n'
        body += "\n".join(items) + "\n</section>\n"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="xltransfer">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def markdown_to_html(text: str) -> str:
    """The Markdown subset above to HTML (every piece of text escaped)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    ids: dict[str, int] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level, content = len(heading.group(1)), heading.group(2)
            anchor = _anchor(content, ids)
            out.append(f'<h{level} id="{anchor}">{_inline(content)}</h{level}>')
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            out.append(_table(lines[i], lines[i + 1], lines[i + 2 : end], _caption(out)))
            i = end
        elif _BULLET.match(line):
            items = []
            while i < len(lines) and _BULLET.match(lines[i]):
                items.append(f"<li>{_inline(_BULLET.match(lines[i]).group(1))}</li>")
                i += 1
            out.append("<ul>\n" + "\n".join(items) + "\n</ul>")
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines, i):
                paragraph.append(lines[i].strip())
                i += 1
            if not paragraph:  # a lone "|" line without a separator: plain text
                paragraph, i = [line.strip()], i + 1
            out.append(f"<p>{_inline(chr(10).join(paragraph))}</p>")
    return "".join(block + "\n" for block in out)


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _HEADING.match(line) or _BULLET.match(line):
        return True
    return line.lstrip().startswith("|") and i + 1 < len(lines) and bool(_SEPARATOR.match(lines[i + 1]))


def _inline(text: str) -> str:
    """Escape, then `code` (verbatim) and **bold** outside code."""
    parts, last = [], 0
    for match in _CODE.finditer(text):
        parts.append(_bold(html.escape(text[last : match.start()])))
        parts.append(f"<code>{html.escape(match.group(2).strip() or match.group(2))}</code>")
        last = match.end()
    parts.append(_bold(html.escape(text[last:])))
    return "".join(parts)


def _bold(escaped: str) -> str:
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    cells = re.split(r"(?<!\\)\|", row)
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _table(header: str, separator: str, body: list[str], caption: str) -> str:
    names = _cells(header)
    aligns = []
    for spec in _cells(separator):
        left, right = spec.startswith(":"), spec.endswith(":")
        aligns.append("center" if left and right else "right" if right else "left" if left else "")
    aligns += [""] * (len(names) - len(aligns))
    grid = [(_cells(line) + [""] * len(names))[: len(names)] for line in body]
    numeric = [j > 0 and _numeric_column([row[j] for row in grid]) for j in range(len(names))]

    def attrs(j: int) -> str:
        if aligns[j]:
            return f' style="text-align:{aligns[j]}"'
        return ' class="num"' if numeric[j] else ""

    head = "".join(
        f'<th scope="col"{attrs(j)}><button type="button">{_inline(name)}</button></th>'
        for j, name in enumerate(names)
    )
    rows = []
    for cells in grid:
        summary = bool(cells) and re.fullmatch(r"\*\*.+\*\*", cells[0]) is not None
        tds = "".join(
            f'<th scope="row"{attrs(j)}>{_inline(c)}</th>' if j == 0 else f"<td{attrs(j)}>{_inline(c)}</td>"
            for j, c in enumerate(cells)
        )
        rows.append(f'<tr class="summary">{tds}</tr>' if summary else f"<tr>{tds}</tr>")
    label = html.escape(caption or "table", quote=True)
    return (
        f'<div class="table-wrap" role="region" tabindex="0" aria-label="{label}">\n'
        f'<table class="sortable">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n</div>"
    )


def _numeric_column(cells: list[str]) -> bool:
    """Every cell a number (first thing in it) or missing, and at least one number."""
    values = [c.strip() for c in cells if c.strip() not in _MISSING]
    return bool(values) and all(_NUMBER.match(c) for c in values)


def _caption(blocks: list[str]) -> str:
    """The nearest heading's text: the accessible name of a table's scrolling region."""
    for block in reversed(blocks):
        match = re.match(r"<h[1-3][^>]*>(.*)</h[1-3]>$", block)
        if match:
            return html.unescape(re.sub(r"<[^>]+>", "", match.group(1)))
    return ""


def _anchor(text: str, seen: dict[str, int]) -> str:
    base = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-") or "section"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def _figure(path: Path) -> str:
    data = path.read_bytes()
    mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else mimetypes.guess_type(path.name)[0]
    size, alt = "", _describe(path)
    if mime == "image/png":
        chunks = _png_text(data)
        alt = chunks.get("Title") or chunks.get("Description") or alt
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            size = f' width="{width}" height="{height}"'
    uri = f"data:{mime or 'application/octet-stream'};base64,{base64.b64encode(data).decode('ascii')}"
    name = html.escape(path.name)
    return (
        f'<figure id="fig-{html.escape(path.stem, quote=True)}">\n'
        f'<img src="{uri}" alt="{html.escape(alt, quote=True)}"{size}>\n'
        f'<figcaption>{html.escape(alt)} <span class="file">({name})</span></figcaption>\n</figure>'
    )


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
