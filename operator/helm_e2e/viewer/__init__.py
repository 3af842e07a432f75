"""`helm-e2e ui`: a read-only web viewer of E2ERuns, served on the user's machine with the user's own
kubeconfig (docs/viewer.md).

- `api`: pure builders of the JSON the pages use, from E2ERun bodies (no I/O).
- `cursor`: the pagination cursor over one or several namespaces (pure).
- `source`: the reads from the apiserver, with the user's rights (list pages, one run, its Events, a watch).
- `server`: the aiohttp app (routes, the Server-Sent Events stream, the packaged static pages).

The apiserver decides what the viewer shows: a namespace the user may not list is reported as forbidden,
never worked around. Nothing here writes to the cluster except the artifacts ticket annotation that
`helm-e2e artifacts` also writes (artifacts/client.py), with the user's own `patch` right.
"""
