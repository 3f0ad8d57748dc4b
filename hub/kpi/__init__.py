"""KPI reports for managers: devices managed and online, availability, alerts per team, MTTA and MTTR.

    data = await source_for(settings).load(period)        # hub.kpi.sources: read-only, with timeouts
    report = build_report(data, period, now_ms=now)       # hub.kpi.report: pandas, no I/O
    report.write(Path("out"), "csv"); report.as_json()

docs/reports.md defines each figure; ``cityhub report`` and ``GET /api/v1/reports/kpi`` serve them. This
package's top level does not import pandas (hub.kpi.report does): a hub pays for it (about 0.3 s and
100 MB of memory with numpy) on its first report only.
"""

from hub.kpi.errors import KpiError, PeriodError, SourceError
from hub.kpi.period import Period, parse_period
from hub.kpi.sources import KpiSource, source_for

__all__ = ["KpiError", "KpiSource", "Period", "PeriodError", "SourceError", "parse_period", "source_for"]
