"""Population stage: citizens (struct of arrays) and the social graph (CSR)."""

from socialcredit.population import china, graph, homophilous, parquet, reference  # noqa: F401  (register plugins)
from socialcredit.population.blocks import BLOCK_SIZE, Blocks
from socialcredit.population.citizens import Citizens
from socialcredit.population.graph import Graph

__all__ = ["BLOCK_SIZE", "Blocks", "Citizens", "Graph"]
