"""The vocabulary every part of the core shares: the pydantic schema, names, DNS-safe names, bounded parsers
(pure).
"""
