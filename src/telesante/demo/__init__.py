"""Demo mode (``TELESANTE_DEMO=1``): a fictional region, its professionals, accounts and synthetic
patients, created by ``telesante demo seed``."""
