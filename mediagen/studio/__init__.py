"""The studio: reviewing, commenting on, sharing and bulk-handling assets that already exist."""
