"""The weekly report's pure parts (no I/O, no Prefect): frames (weeks, pandas frames), history
(closures from activity logs), kpis (the KPIs), outlook (headline, SLA outlook), render
(formatting, Markdown), charts, html_page, files (CSV, JSON). tasks/weekly_report.py fetches
and writes; flows/weekly_report.py runs it."""
