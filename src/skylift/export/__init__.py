"""`skylift export`: files that run an app elsewhere (a container image, Kubernetes, AWS SAM).

Every exporter answers one question, `plan(app) -> Plan`: the files it would write. The
CLI then writes the plan (`write`) or shows it (`table`). Exporters never deploy.
"""

from skylift.export.model import AppModel, load_app
from skylift.export.plan import Exporter, ExportError, File, Plan, table, write

__all__ = ["AppModel", "ExportError", "Exporter", "File", "Plan", "load_app", "table", "write"]
