"""ECRM: erasure-coded embedding tables for fault-tolerant DLRM training.

Embedding rows are striped k at a time across parameter servers with one parity row (the sum) per
stripe, so losing a server costs neither a pause nor the work since a checkpoint: its rows are
served degraded (parity minus the others) while a replacement is rebuilt range by range.
Torch and Ray are imported only inside the modules that need them.
"""
