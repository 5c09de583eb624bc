"""What an on-call engineer looks at: SLO rules and alerts, Grafana dashboards, provisioning.

Entry points the CLI wires (``peakload slo rules`` / ``peakload dashboards build|push``)::

    from dashboards import write_rules, write_dashboards, push_dashboards
    write_rules(spec, "out/")                 # out/slo.rules.yaml
    write_dashboards(spec, "out/")            # out/load-test.json, slo.json, platform.json
    push_dashboards(url, token, "out/")       # folder "peakload", overwrite
"""

from dashboards.errors import (
    DashboardBuildError,
    DashboardsError,
    GrafanaAuthError,
    GrafanaUnreachableError,
    PrometheusError,
    PushError,
    RulesGenerationError,
)
from dashboards.grafana import (
    DASHBOARD_FILES,
    GENERATED_DIR,
    build_dashboards,
    write_dashboards,
)
from dashboards.push import push_dashboards
from dashboards.rules import (
    build_rules,
    generate_rules,
    load_spec,
    render_rules,
    write_rules,
)

__all__ = [
    "build_rules",
    "render_rules",
    "write_rules",
    "generate_rules",
    "load_spec",
    "build_dashboards",
    "write_dashboards",
    "push_dashboards",
    "DASHBOARD_FILES",
    "GENERATED_DIR",
    "DashboardsError",
    "RulesGenerationError",
    "DashboardBuildError",
    "PushError",
    "GrafanaAuthError",
    "GrafanaUnreachableError",
    "PrometheusError",
]
