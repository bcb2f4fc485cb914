"""Coral's simulation layer: request traces, availability traces, the per-instance engine and the
event-driven simulator that replays a trace against any planner."""
