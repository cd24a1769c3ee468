"""Query strategies: pure functions from a query context to ranked picks with reasons."""

from strategies.base import QueryContext, Selection, Strategy
from strategies.registry import available, get_strategy, register, select

__all__ = ["QueryContext", "Selection", "Strategy", "available", "get_strategy", "register", "select"]
