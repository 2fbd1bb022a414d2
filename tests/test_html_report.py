"""The static report: PNG figures from hand-made records, and index.html in headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package
(the test extra); under ``CI`` their absence fails the test, elsewhere it skips with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xltransfer.reporting.figures import language_map, render_figures
from xltransfer.reporting.html import _png_text, markdown_to_html, render_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

MARKDOWN = """# Leaderboard: tiny <b>grid</b>

Zero-shot transfer from `qaa` with **two** seeds & a <script>alert(1)</script> that must stay text.

## pos · zero-shot · accuracy (source: qaa)

| target | full-ft | mad-x |
|---|---|---|
| qac (unseen) | 40.0 ± 1.2 | 3.1 |
| qab (seen) | 12.5 ± 0.3 | – |
| qae (unseen) | 3.1 | 40.0 ± 1.2 |
| qad (seen) | 71.2 | 12.5 ± 0.3 |
| **average** | 31.7 | – |

| method | trainable params per cell | train seconds, all cells |
|---|---|---|
| mad-x | 0.79M | 65 |
| full-ft | 1.97M | 20 |
| bad-x | 0.72M | 157 |

Failed cells (1):

- `mad-x/pos/zero-shot/qaa->qab/seed2/abcd1234`
"""


def _record(method: str, target: str, seed: int, value: float, **overrides: Any) -> dict[str, Any]:
    record = {
        "cell_id": f"{method}/pos/zero-shot/qaa->{target}/seed{seed}",
        "method": method,
        "variant": "default",
        "task": "pos",
        "setting": "zero-shot",
        "shots": 0,
        "partition": None,
        "source_languages": ["qaa"],
        "target_language": target,
        "split": "test",
        "metric": "accuracy",
        "value": value,
        "seed": seed,
        "status": "ok",
        "trainable_params": 790_000 if method == "mad-x" else 1_970_000,
        "extra": {
            "piece_costs": {
                "la:qaa": [220_000, 30.0],
                f"la:{target}": [220_000, 30.0],
                "ta:pos": [350_000, 5.0],
            }
            if method == "mad-x"
            else {"full-ft:pos": [1_970_000, 20.0]}
        },
    }
    record.update(overrides)
    return record


def _records() -> list[dict[str, Any]]:
    """Two methods x three targets x two seeds, plus rows every figure must ignore."""
    records = []
    for i, target in enumerate(["qab", "qac", "qad"]):
        for seed in (1, 2):
            records.append(_record("full-ft", target, seed, 0.60 + 0.05 * i + 0.01 * seed))
            records.append(_record("mad-x", target, seed, 0.55 + 0.07 * i - 0.02 * seed))
    records += [
        _record("mad-x", "qab", 1, 0.9, split="dev"),  # not the test split
        _record("mad-x", "qab", 3, None, status="failed"),  # a failed cell
        _record("mad-x", "qab", 1, 0.2, metric="loss"),  # not the main metric
    ]
    return records


def _main_metric(task: str) -> str:
    return {"pos": "accuracy"}[task]


# --- figures and HTML, no browser ------------------------------------------------------------------


def test_bar_chart_with_two_seeds_and_deterministic_html(tmp_path: Path) -> None:
    first = render_figures(_records(), tmp_path / "a", _main_metric)
    names = [p.name for p in first]
    assert names == ["bars-pos-zero-shot.png", "efficiency.png"]  # no few-shot cells: no curve
    bars = first[0]
    assert bars == tmp_path / "a" / "figures" / "bars-pos-zero-shot.png"
    data = bars.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    text = _png_text(data)
    assert "Software" not in text  # no matplotlib version in the bytes
    assert text["Title"].startswith("pos · zero-shot") and "mean ± std over seeds" in text["Title"]

    # the same records (in another order, into another folder) give the same bytes and page
    second = render_figures(list(reversed(_records())), tmp_path / "b", _main_metric)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    page_a = render_html(MARKDOWN, first, "tiny")
    page_b = render_html(MARKDOWN, second, "tiny")
    assert page_a == page_b
    assert render_html(MARKDOWN, first, "tiny") == page_a
    assert page_a.count('<img src="data:image/png;base64,') == 2
    assert 'alt="pos · zero-shot · source: qaa (mean ± std over seeds)"' in page_a
    assert "http://" not in page_a and "https://" not in page_a  # nothing from the network


def test_few_shot_curve_and_language_map(tmp_path: Path) -> None:
    records = _records()
    for k in (5, 10):
        for target in ("qab", "qac", "qad"):
            for method in ("full-ft", "mad-x"):
                records.append(
                    _record(method, target, 1, 0.7 + k / 100, setting="few-shot", shots=k, extra={})
                )
    written = render_figures(records, tmp_path, _main_metric)
    assert [p.name for p in written] == [
        "bars-pos-zero-shot.png",
        "bars-pos-few-shot-k5.png",
        "bars-pos-few-shot-k10.png",
        "efficiency.png",
        "few-shot-pos.png",
    ]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in written)

    embeddings = {
        "qab": [1.0, 0.0, 0.2],
        "qac": [0.9, 0.1, 0.1],
        "qad": [0.0, 1.0, 0.7],
        "qae": [0.1, 0.8, 0.9],
    }
    families = {"qab": "alpha", "qac": "alpha", "qad": "beta"}  # qae: unknown
    path = language_map(embeddings, families, tmp_path / "map.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert language_map(embeddings, families, tmp_path / "again.png").read_bytes() == path.read_bytes()
    from PIL import Image

    learned = language_map(embeddings, families, tmp_path / "learned.png", whose="hyper-x:small")
    assert Image.open(learned).text["Title"] == "hyper-x:small: languages, PCA of 3-dim vectors"
    assert Image.open(path).text["Title"] == "Languages, PCA of 3-dim vectors"


def test_markdown_subset() -> None:
    body = markdown_to_html(MARKDOWN)
    assert '<h1 id="leaderboard-tiny-b-grid-b">Leaderboard: tiny &lt;b&gt;grid&lt;/b&gt;</h1>' in body
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<code>qaa</code>" in body and "<strong>two</strong>" in body and "&amp;" in body
    assert body.count("<table") == 2 and body.count('<div class="table-wrap"') == 2
    assert '<tr class="summary">\n<th scope="row"><strong>average</strong></th>' in body
    assert '<td class="num">40.0 ± 1.2</td>' in body and '<td class="num">–</td>' in body
    assert "<ul>\n<li><code>mad-x/pos/zero-shot/qaa-&gt;qab/seed2/abcd1234</code></li>\n</ul>" in body
    assert "<p>Failed cells (1):</p>" in body


def test_images_fences_captions_and_bold_columns(tmp_path: Path) -> None:
    """What the hand-written converter got wrong: images stayed ``![...](...)`` text, a fenced block
    collapsed into one line with stray backticks, and a column whose cells are all bold lost the
    number alignment."""
    figure = render_figures(_records(), tmp_path, _main_metric)[0]
    text = (
        "## Scores\n\n*pos, zero-shot: accuracy (%) on each target's test split.*\n\n"
        "| target | a | b |\n|:---|---:|---:|\n| qab | **81.4**↑ | 23.0 |\n| qac | **61.6** | 27.1 |\n\n"
        "## Figures\n\n![Bars: pos](figures/bars.png)\n\n"
        "Reproduce:\n\n```sh\ngit checkout abc123\nxlt run leaderboards/x --workdir w\n```\n"
    )
    body = markdown_to_html(text, {"figures/bars.png": figure})
    assert "![" not in body and "`" not in body
    reproduce = "git checkout abc123\nxlt run leaderboards/x --workdir w\n"
    assert f'<pre><code class="language-sh">{reproduce}</code></pre>' in body
    assert body.count("<img ") == 1 and 'src="data:image/png;base64,' in body
    assert "figures/bars.png" not in body  # embedded where the Markdown shows it, once
    assert "<figure>" in body and "<figcaption>Bars: pos" in body
    assert "<caption>pos, zero-shot: accuracy (%) on each target's test split.</caption>" in body
    assert '<td class="num"><strong>81.4</strong>↑</td>' in body
    assert '<td class="num"><strong>61.6</strong></td>' in body


# --- the page in a browser ---------------------------------------------------------------------------


def _first_column(table) -> list[str]:
    from selenium.webdriver.common.by import By

    return [th.text for th in table.find_elements(By.CSS_SELECTOR, "tbody tr > th:first-child")]


def test_index_html_in_chromium(tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    figures = render_figures(_records(), tmp_path, _main_metric)[:1]  # the bar chart
    index = tmp_path / "index.html"
    index.write_text(render_html(MARKDOWN, figures, "tiny leaderboard"), encoding="utf-8")
    browser.get(index.as_uri())

    assert browser.title == "tiny leaderboard"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Leaderboard: tiny <b>grid</b>"
    assert browser.execute_script("return document.querySelectorAll('main script').length") == 0
    tables = browser.find_elements(By.CSS_SELECTOR, "table.sortable")
    assert len(tables) == 2
    scores, costs = tables
    header = [th.text.strip(" ↕▲▼") for th in scores.find_elements(By.CSS_SELECTOR, "thead th")]
    assert header == ["target", "full-ft", "mad-x"]
    original = ["qac (unseen)", "qab (seen)", "qae (unseen)", "qad (seen)", "average"]
    assert _first_column(scores) == original

    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 1
    assert images[0].get_attribute("alt").startswith("pos · zero-shot")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", images[0]) > 0

    def click(table, column: int) -> Any:
        th = table.find_elements(By.CSS_SELECTOR, "thead th")[column]
        th.click()
        return th

    # full-ft: 40.0 ± 1.2, 12.5 ± 0.3, 3.1, 71.2 sort by their first number; "average" stays last
    th = click(scores, 1)
    assert _first_column(scores) == ["qae (unseen)", "qab (seen)", "qac (unseen)", "qad (seen)", "average"]
    assert th.get_attribute("aria-sort") == "ascending"
    click(scores, 1)
    assert _first_column(scores) == ["qad (seen)", "qac (unseen)", "qab (seen)", "qae (unseen)", "average"]
    assert th.get_attribute("aria-sort") == "descending"

    # mad-x has a missing cell ("–"): last in both directions; the other header loses aria-sort
    th2 = click(scores, 2)
    assert _first_column(scores) == ["qac (unseen)", "qad (seen)", "qae (unseen)", "qab (seen)", "average"]
    assert th2.get_attribute("aria-sort") == "ascending" and th.get_attribute("aria-sort") is None
    click(scores, 2)
    assert _first_column(scores) == ["qae (unseen)", "qad (seen)", "qac (unseen)", "qab (seen)", "average"]
    assert th2.get_attribute("aria-sort") == "descending"

    # the second table sorts on its own: "0.72M" style numbers, then text in the first column
    before = _first_column(costs)
    click(costs, 1)
    ascending = _first_column(costs)
    assert ascending == ["bad-x", "mad-x", "full-ft"] and ascending != before
    click(costs, 1)
    assert _first_column(costs) == list(reversed(ascending))
    click(costs, 0)
    assert _first_column(costs) == ["bad-x", "full-ft", "mad-x"]
    assert _first_column(scores)[-1] == "average"  # untouched by the other table's clicks


def test_the_efficiency_figure_shows_a_method_without_parameters_whole(tmp_path: Path) -> None:
    """The majority floor trains nothing (x = 0): the linear axis starts left of 0, so its dot is
    not cut in half by the frame, and no negative count is printed under it."""
    from xltransfer.reporting.figures import linear_limits

    left, right = linear_limits([0.0, 790_000.0, 1_970_000.0])
    assert left < 0 < 1_970_000 < right and -left >= 0.03 * right
    records = _records() + [
        _record("majority", t, 1, 0.2, trainable_params=0, extra={"piece_costs": {}})
        for t in ("qab", "qac", "qad")
    ]
    figures = render_figures(records, tmp_path, _main_metric)
    assert [p.name for p in figures] == ["bars-pos-zero-shot.png", "efficiency.png"]


def test_a_method_that_did_not_converge_is_marked_in_the_figures_and_labels_keep_apart(
    tmp_path: Path,
) -> None:
    """As the tables' †: a method with a record whose pieces did not converge gets hatched bars and
    a hollow dot, and "† not converged" in the legend; two dots of nearly the same size and score
    get labels that do not overlap, stay inside the axes and cover no other dot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from xltransfer.reporting.figures import _annotate_apart, _legend_name, _unconverged

    records = _records()
    stuck = {"converged": False, "flagged": {"ta:pos": "no progress"}}
    records[-1] = {**records[-1], "extra": {**records[-1]["extra"], "convergence": stuck}}
    assert _unconverged(records) == {label_of(records[-1])}
    assert _legend_name("mad-x", {"mad-x"}) == "mad-x † not converged" and _legend_name("x", set()) == "x"
    assert [p.name for p in render_figures(records, tmp_path, _main_metric)] == [
        "bars-pos-zero-shot.png",
        "efficiency.png",
    ]

    fig = Figure(figsize=(6, 4), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    points = [(480_000.0, 42.6), (520_000.0, 43.1), (990_000.0, 20.3), (990_000.0, 19.5)]
    ax.scatter(*zip(*points, strict=True))
    _annotate_apart(ax, points, ["lang-adapters", "pair-adapters", "no-rescale", "no-rescale-post-norm"])
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert len(boxes) == 4
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    frame = ax.get_window_extent(renderer)
    for text, box in zip(ax.texts, boxes, strict=True):  # inside the axes, off the other dots
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, (text.get_text(), box, frame)
        for point in points:
            if point != tuple(text.xy):
                x, y = ax.transData.transform(point)
                assert not box.padded(3).contains(x, y), (text.get_text(), point)


def label_of(record: dict[str, Any]) -> str:
    return record["method"] if record["variant"] == "default" else f"{record['method']}:{record['variant']}"
