"""Several seeds of one setting, pooled for `searchlab compare`.

One run per strategy says little on a small data set: the seed moves the best value as much as the strategy
does. Runs that differ only in `seed` (same strategy, pruner, budget, space, data and epochs) are pooled: the
mean best-so-far curve by completed trials with its min-max band, and the final best as mean, standard
deviation and range over the seeds, so "TPE vs random, 3 seeds each" is read as means, not as single runs.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass
from statistics import mean, stdev

import plotly.graph_objects as go
from plotly.colors import qualitative

from searchlab.engine.rundir import OpenRun
from searchlab.engine.setup_record import named_strategy
from searchlab.engine.setup_said import strategy_said

# What a seed pool must share: every recorded setting that changes what the search does, but not the seed,
# where the run lives or the software it ran with.
SHARED_SEARCH = ("strategy", "strategy_preset_read", "pruner", "budget", "space_searched", "space_fixed")


@dataclass
class SeedPool:
    label: str
    seeds: list            # recorded seed of each run, in the order given
    curves: list           # their Curve (searchlab.report.compare)

    def finals(self) -> list[float]:
        return [c.best[-1] for c in self.curves if c.best]

    def spread(self) -> tuple[float, float | None, float, float] | None:
        """Mean, standard deviation (None for one value), min and max of the final best; None without any."""
        finals = self.finals()
        if not finals:
            return None
        return mean(finals), stdev(finals) if len(finals) > 1 else None, min(finals), max(finals)

    def mean_trials(self) -> float:
        return mean(len(c.trials) for c in self.curves)

    def said(self) -> str:
        """One line: mean +- sd (range) of the final best over the seeds, and the trials each completed."""
        if self.spread() is None:
            return f"{self.label}: no completed trial in any of {len(self.curves)} seeds"
        average, sd, low, high = self.spread()
        spread = f" +- {sd:.4f} ({low:.4f} to {high:.4f})" if sd is not None else ""
        without = len(self.curves) - len(self.finals())
        missing = f", {without} seeds without a completed trial" if without else ""
        return (f"{self.label}: best {average:.4f}{spread} over {len(self.curves)} seeds, "
                f"{self.mean_trials():.1f} completed trials on average{missing}")


def setting_key(run: OpenRun) -> str:
    search = {k: run.search.get(k) for k in SHARED_SEARCH}
    # an older record names no strategy beside tpe's args: the same setting as a newer one naming tpe
    search["strategy"] = named_strategy(search["strategy"])
    shared = {"search": search, "data": run.data_read, "epochs": run.record.get("epochs")}
    return json.dumps(shared, sort_keys=True, default=str)


def seed_pools(runs: list[OpenRun], curves: list) -> list[SeedPool]:
    """The settings run with at least two different seeds, in the order first given; empty when none was."""
    groups: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(setting_key(run), []).append(i)
    pools = []
    for members in groups.values():
        seeds = [runs[i].search.get("seed") for i in members]
        if len(set(map(str, seeds))) < 2:
            continue        # one run, or the same seed twice (a copy): nothing to pool
        strategy = runs[members[0]].search.get("strategy")
        pools.append(SeedPool(strategy_said(strategy) if strategy else "runs", seeds, [curves[i] for i in members]))
    _tell_apart(pools)
    return pools


def _tell_apart(pools: list[SeedPool]) -> None:
    """Pools of one strategy that differ in some other setting are numbered, so the legend tells them apart."""
    strategies = [p.label for p in pools]
    seen: dict[str, int] = {}
    for pool, strategy in zip(pools, strategies):
        seen[strategy] = seen.get(strategy, 0) + 1
        numbered = f" (setting {seen[strategy]})" if strategies.count(strategy) > 1 else ""
        pool.label = f"{strategy}{numbered}, seeds " + ", ".join(map(str, pool.seeds))


def mean_curve(pool: SeedPool) -> tuple[list[int], list[float], list[float], list[float]]:
    """(completed trials n, mean, min, max of the best so far after n trials) over the seeds, up to the longest
    run. A run that ended sooner keeps its final best (its best so far does not change after it ends): averaged
    over only the runs that reached n, a pool's late points were one seed's value drawn as the mean, and the
    curve ended away from the mean best its table gives. Runs without a completed trial have no best."""
    ran = [c.best for c in pool.curves if c.best]
    longest = max((len(best) for best in ran), default=0)
    xs, means, lows, highs = [], [], [], []
    for n in range(1, longest + 1):
        values = [best[min(n, len(best)) - 1] for best in ran]
        xs.append(n)
        means.append(mean(values))
        lows.append(min(values))
        highs.append(max(values))
    return xs, means, lows, highs


def carried_forward_said(pools: list[SeedPool]) -> str:
    """Beside the pooled curve: how a shorter run counts after it ended, and each run's completed trials."""
    counts = "; ".join(f"{pool.label}: " + ", ".join(str(len(c.best)) for c in pool.curves) for pool in pools)
    return (f"completed trials per run ({counts}); a run that ended sooner counts with its final best, carried "
            "forward to the longest run's length, so each curve ends at its mean best in the table below")


def pooled_figure(pools: list[SeedPool], metric: str) -> go.Figure:
    fig = go.Figure()
    for i, pool in enumerate(pools):
        xs, means, lows, highs = mean_curve(pool)
        # set, not read back: an unset trace colour reads None, and the band then took the next default colour
        colour = qualitative.Plotly[i % len(qualitative.Plotly)]
        fig.add_trace(go.Scatter(x=xs, y=means, mode="lines", line_shape="hv", name=f"{pool.label}: mean",
                                 line=dict(color=colour)))
        band_x, band_y = step_band(xs, lows, highs)
        fig.add_trace(go.Scatter(x=band_x, y=band_y, mode="lines", fill="toself", opacity=0.2,
                                 line=dict(width=0, color=colour),
                                 name=f"{pool.label}: min to max", hoverinfo="skip"))
    fig.update_layout(xaxis_title="completed trials", yaxis_title=f"best {metric} (mean over seeds)", height=450)
    return fig


def step_band(xs: list[int], lows: list[float], highs: list[float]) -> tuple[list[float], list[float]]:
    """The min-max band as a closed polygon of steps, as the mean line's "hv" steps are drawn: each value holds
    from its trial to the next. Drawn "hv" itself, the band's reversed lower edge stepped at the other end of
    each interval, one trial late, and the mean line ran outside its own min-max band."""
    edges = [edge for x, end in zip(xs, [*xs[1:], xs[-1]] if xs else []) for edge in (x, end)]

    def held(values: list[float]) -> list[float]:   # each value over both ends of its step
        return [value for value in values for _ in range(2)]
    return edges + edges[::-1], held(highs) + held(lows)[::-1]


def pooled_table(pools: list[SeedPool]) -> str:
    rows = []
    for pool in pools:
        cells = ["" if v is None else f"{v:.4f}" for v in pool.spread() or (None,) * 4]
        rows.append(f"<tr><td>{html.escape(pool.label)}</td><td>{len(pool.curves)}</td>"
                    + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{pool.mean_trials():.1f}</td></tr>")
    return ('<table class="sortable"><thead><tr><th>setting</th><th>seeds</th><th>mean best</th><th>sd</th>'
            "<th>min</th><th>max</th><th>completed trials (mean)</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
