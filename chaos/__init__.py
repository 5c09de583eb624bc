"""What is broken on purpose and how recovery is measured: the full platform, the 3-2-1
backup drill, Chaos Toolkit actions/probes/experiments and a fault-injecting proxy.

Usage::

    from chaos.platform import up, down, status
    from chaos.drill import run_backup_drill
"""

__all__ = ["platform"]
