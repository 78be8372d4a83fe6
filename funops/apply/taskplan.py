"""Moved to funops/plan/taskplan.py: a node's tasks are planned once, at plan time (the plan is the
program apply runs). Kept so that older imports still resolve."""

from ..plan.taskplan import NodeTasks, _one_reload, plan_node

__all__ = ["NodeTasks", "_one_reload", "plan_node"]
