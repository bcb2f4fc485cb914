"""The algebra of convertible codes: explicit constructions and cost bounds, apart from their
store formats (``redundancy.convertible.stores``)."""
