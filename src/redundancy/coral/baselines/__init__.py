"""Baseline planners with the simulator's interface (Homo, Mélange, Cauchy, Helix, Coral's
ablations); ``planners.PLANNERS`` names them all."""
