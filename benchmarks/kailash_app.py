"""Kailash Nexus with one PythonCodeNode workflow (run in benchmarks/.venvs/kailash): the peer to beat."""

import sys

from kailash.workflow.builder import WorkflowBuilder
from nexus import Nexus

port, mcp_port = int(sys.argv[1]), int(sys.argv[2])
app = Nexus(api_port=port, mcp_port=mcp_port, enable_auth=False, rate_limit=None, enable_durability=False)
workflow = WorkflowBuilder()
workflow.add_node("PythonCodeNode", "node", {"code": "result = {'ok': True}"})
app.register("one", workflow.build())
app.start()
