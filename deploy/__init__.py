"""Serving Warrant in production: the same graph, `Auth` and routes on Aegra and PostgreSQL."""
