"""The REST API (DRF): the only package importing rest_framework."""
