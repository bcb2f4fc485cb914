"""The algebra of convertible codes: explicit constructions, apart from their store formats."""
