"""The workflow engine: nodes, the builder, the runtime. Nothing here knows about HTTP."""
