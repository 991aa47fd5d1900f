"""The Warrant agent graph: `from graph.agent import build_graph, graph`."""
