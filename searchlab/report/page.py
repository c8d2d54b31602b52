"""One self-contained HTML page: plotly.js inlined once, figures as divs, tables sortable by a click.

Opens offline, from a file or an e-mail attachment: no script, style or font is fetched from anywhere.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 .6em;color:#222}
h1{font-size:1.6em}h1,code{overflow-wrap:anywhere}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
.note{color:#666;font-style:italic}table.sortable{border-collapse:collapse;font-size:.85em}
table.sortable th{cursor:pointer;background:#f3f3f3}table.sortable td,table.sortable th{padding:3px 8px;
border:1px solid #ddd;text-align:right}img.grid{image-rendering:pixelated;width:384px;margin:4px}
figure.grid{display:inline-block;vertical-align:top;max-width:520px}figure.grid figcaption{font-size:.85em}
.rowed{display:flex}.rows{display:flex;flex-direction:column;margin:4px 0;font-size:.8em}
.rows div{flex:1;display:flex;align-items:center;justify-content:flex-end;padding-right:4px}"""

# Click a header to sort by that column (numbers numerically), again to reverse. The column is the header's
# place in its own row (cellIndex): a page's second table must not count the first one's headers.
SORTER = """document.querySelectorAll('table.sortable th').forEach(th => th.addEventListener('click', () => {
 const col = th.cellIndex, body = th.closest('table').tBodies[0], rows = Array.from(body.rows),
  down = th.dataset.dir !== 'asc';
 th.dataset.dir = down ? 'asc' : 'desc';
 const key = r => { const t = r.cells[col].innerText, n = parseFloat(t); return isNaN(n) ? t : n; };
 rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (down ? 1 : -1));
 rows.forEach(r => body.appendChild(r)); }));"""


@dataclass
class Section:
    title: str
    body: str          # HTML


# plotly.js shows a "Share chart..." button by default (showSendToCloud), which uploads the plot's data to Plotly
# Cloud: the pages promise offline use, and a study's values are not to leave the machine by a stray click.
PLOT_CONFIG = {"displaylogo": False, "showSendToCloud": False,
               "plotlyServerURL": "", "modeBarButtonsToRemove": ["sendChartToCloud", "sendDataToCloud"]}


def figure(title: str, fig: go.Figure) -> Section:
    fig.update_layout(title=None, margin=dict(l=40, r=20, t=30, b=40))
    return Section(title, fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG))


def note(title: str, text: str) -> Section:
    return Section(title, f'<p class="note">{html.escape(text)}</p>')


def page(title: str, intro: str, sections: list[Section]) -> str:
    body = "\n".join(f"<h2>{html.escape(s.title)}</h2>\n{s.body}" for s in sections)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            # without it a phone lays the page out 980 px wide and shrinks it, text and all, to its screen
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>\n<body><h1>{html.escape(title)}</h1>\n"
            f"{intro}\n{body}\n<script>{SORTER}</script></body></html>\n")
