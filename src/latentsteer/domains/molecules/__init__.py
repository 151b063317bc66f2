"""The molecule domain: MOSES molecules as SELFIES, RDKit as the oracle (work in progress)."""
