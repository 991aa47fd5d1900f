"""The graph's nodes, one small async function per module.

`identity` and `refuse` (who the thread acts for), `agent` (the chat model with the graph's tools
bound), and one node per kind of authority a tool call needs: `tools` (Token Vault connection,
FGA relation, or none), `approval` (CIBA) and `retrieve` (FGA-filtered documents). Each node that
answers tool calls takes `(state, config, runtime, *, toolset)`: `build_graph` passes the
graph's own `graph.toolset.Toolset`, and the node answers the first pending call the tool set
routes to it (`toolset.pending_calls_for(state, "<node>")`) with a ToolMessage, calling
`graph.identity.acting_user(...)` before it acts; the graph then routes to the next pending call
or back to `agent`.
"""

from __future__ import annotations
