"""jwt-setup: JWK set (from a mounted Secret) → signed JWT written atomically to a shared volume."""
