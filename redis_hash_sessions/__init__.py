"""A Django session engine that keeps sessions in Redis hashes."""
