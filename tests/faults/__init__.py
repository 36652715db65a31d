"""Fault injection: real processes killed, a real PostgreSQL stopped, bad input among good."""
