"""The leaderboard's tables as LaTeX for a paper: booktabs tables (pandas' LaTeX writer) with a
caption, averages under a rule, bold best entries, significance and convergence marks as
superscripts, and the footnotes under each table. ``\\usepackage{booktabs}`` in the preamble."""

from __future__ import annotations

import re

from xltransfer.reporting.markdown import BETTER, LOADED, NOT_CONVERGED, WORSE, Entry, Tabular

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "→": r"$\rightarrow$",
    "·": r"$\cdot$",
    "−": r"$-$",
    BETTER: r"$^{\uparrow}$",
    WORSE: r"$^{\downarrow}$",
    NOT_CONVERGED: r"$^{\dagger}$",
    LOADED: r"$^{\ell}$",
}
_PATTERN = re.compile("|".join(re.escape(k) for k in _SPECIAL))


def escape(text: str) -> str:
    return _PATTERN.sub(lambda m: _SPECIAL[m.group(0)], text)


def tabular_latex(tabular: Tabular, label: str | None = None) -> str:
    """One ``table`` environment; its notes follow the tabular in small type."""
    import pandas as pd

    first_summary = len(tabular.rows) - tabular.summary_rows
    body = [
        [_entry(e, bold=j == 0 and i >= first_summary) for j, e in enumerate(row)]
        for i, row in enumerate(tabular.rows)
    ]
    frame = pd.DataFrame(body, columns=[escape(h) for h in tabular.header])
    columns = "".join("r" if numeric else "l" for numeric in tabular.numeric)
    text = frame.style.hide(axis="index").to_latex(
        hrules=True,
        column_format=columns,
        caption=escape(tabular.caption) if tabular.caption else None,
        label=label,
        position="t",
        position_float="centering",
    )
    lines = text.rstrip("\n").split("\n")
    if tabular.summary_rows and first_summary:  # a rule above the averages
        header_rule = lines.index(r"\midrule")
        lines.insert(header_rule + 1 + first_summary, r"\midrule")
    if tabular.notes:
        notes = " ".join(escape(note) for note in tabular.notes)
        lines.insert(len(lines) - 1, rf"\par\smallskip{{\footnotesize {notes}}}")
    return "\n".join(lines) + "\n"


def _entry(entry: Entry, bold: bool = False) -> str:
    text = escape(entry.text)
    if bold or entry.bold:
        text = rf"\textbf{{{text}}}"
    return text + escape(entry.marks)


def leaderboard_latex(grid_name: str, sections: list[tuple[str, list[Tabular]]]) -> str:
    """Every table of the leaderboard, in order, ready to ``\\input``."""
    out = [
        f"% Leaderboard {grid_name}: tables written by `xlt report --format latex`.",
        "% Needs \\usepackage{booktabs} in the preamble.",
        "",
    ]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", grid_name).strip("-")
    for i, (_title, tabulars) in enumerate(sections, start=1):
        for j, tabular in enumerate(tabulars, start=1):
            out.append(tabular_latex(tabular, label=f"tab:{slug}-{i}-{j}"))
    if not sections:
        out.append("% No results yet: run `xlt run` on this grid first.")
    return "\n".join(out).rstrip("\n") + "\n"
