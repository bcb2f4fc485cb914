"""Coral's planner: catalogs, the calibrated performance model, Stage 1 templates (placement),
Stage 2 allocation ILP, the monolithic joint MILP, and the planning driver."""
