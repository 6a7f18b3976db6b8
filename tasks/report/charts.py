"""The weekly report's charts: PNG images (base64) drawn with matplotlib. No I/O, no
Prefect."""
from __future__ import annotations

import base64
import io
from datetime import datetime
from typing import Any

from tasks.report.kpis import WeeklyReport
from tasks.report.outlook import partial_week
from tasks.report.render import _plain, _when

# --------------------------------------------------------------------------------------------
# Charts (matplotlib, Agg backend: no display needed), drawn for a page 1,200 px wide

SEVERITY_COLOURS = {
    "critical": "#7f0000",
    "high": "#d32f2f",
    "medium": "#f57c00",
    "low": "#fbc02d",
    "info": "#1976d2",
    "unknown": "#9e9e9e",
}
OTHER_COLOUR = "#6d4c41"
CHART_SIZE = (12, 4.2)  # inches at CHART_DPI: 1,200 x 420 px
CHART_DPI = 100
CHART_WIDTH_PX = int(CHART_SIZE[0] * CHART_DPI)


def _label(value: Any) -> str:
    # matplotlib reads $...$ as math: a stray dollar from the data must stay a dollar.
    return _plain(value).replace("$", r"\$")


def _colour(severity: Any) -> str:
    return SEVERITY_COLOURS.get(str(severity), OTHER_COLOUR)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _week_labels(report: WeeklyReport, partial: bool) -> list[str]:
    """'W38' under each week, the year under the first week and under each week 1."""
    labels = []
    for i, text in enumerate(report.trends["week"]):
        year, _, week = str(text).partition("-")
        labels.append(_label(f"{week}\n{year}" if i == 0 or week == "W01" else week))
    if partial and labels:
        labels[-1] = labels[-1].split("\n")[0] + "\n(partial)"
    return labels


def charts(report: WeeklyReport, generated_at: datetime | None = None) -> dict[str, str]:
    """Chart title -> base64 PNG (1,200 px wide, labels at 12-13 pt, severities in colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "font.size": 13,
        "axes.titlesize": 14,
        "axes.labelsize": 13,
        "xtick.labelsize": 12,
        "ytick.labelsize": 12,
        "legend.fontsize": 12,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    partial = partial_week(report.window, _when(report, generated_at)) is not None
    out: dict[str, str] = {}
    with plt.rc_context(style):
        backlog = {s: v["value"] for s, v in report.kpis["backlog_by_severity"].items()}
        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        bars = ax.bar(
            [_label(s) for s in backlog],
            list(backlog.values()),
            color=[_colour(s) for s in backlog],
        )
        ax.bar_label(bars, padding=3)
        ax.set_ylabel("open incidents")
        ax.set_title("Open incidents at the week's end, by severity")
        out["Backlog by severity"] = _png(fig)

        t = report.trends
        x = list(range(len(t)))
        labels = _week_labels(report, partial)
        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        opened = ax.bar(
            [i - 0.2 for i in x], t["opened"], width=0.4, label="opened", color="#d32f2f"
        )
        closed = ax.bar(
            [i + 0.2 for i in x], t["closed"], width=0.4, label="closed", color="#388e3c"
        )
        if partial and x:
            for bar in (opened[-1], closed[-1]):
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        ax.set_xticks(x, labels)
        ax.set_ylabel("incidents")
        ax.set_title(
            "Opened and closed per week" + (" (the last week is partial)" if partial else "")
        )
        ax.legend(loc="upper left")
        out["Opened vs closed per week"] = _png(fig)

        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        ax.plot(
            x,
            t["time_to_close_median_days"].astype(float),
            marker="o",
            linewidth=2,
            label="median",
            color="#1976d2",
        )
        ax.plot(
            x,
            t["time_to_close_p90_days"].astype(float),
            marker="o",
            linewidth=2,
            label="90th percentile",
            color="#7b1fa2",
        )
        ax.set_xticks(x, labels)
        ax.set_ylabel("days")
        ax.set_ylim(bottom=0)
        ax.set_title("Days from first occurrence to closure, for the week's closures")
        ax.legend(loc="upper left")
        out["Time to close per week"] = _png(fig)

        aging = report.backlog_aging
        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        buckets = [_label(b) for b in aging.columns]
        bottom = [0] * len(buckets)
        for severity in aging.index:
            values = aging.loc[severity].tolist()
            ax.bar(buckets, values, bottom=bottom, label=_label(severity), color=_colour(severity))
            bottom = [b + v for b, v in zip(bottom, values)]
        for i, total in enumerate(bottom):
            ax.annotate(
                f"{total:,}",
                (i, total),
                ha="center",
                va="bottom",
                xytext=(0, 3),
                textcoords="offset points",
            )
        ax.set_ylabel("open incidents")
        ax.set_xlabel("open for")
        ax.set_title("Age of the open incidents at the week's end, by severity")
        ax.legend(title="severity", loc="upper left")
        out["Backlog aging"] = _png(fig)
    return out


