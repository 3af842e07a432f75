"""Artifacts (effects): the server collectors upload to, the store behind it, and the client of `helm-e2e
artifacts`.
"""
