"""Listening tests: blinded stimuli (:mod:`.stimuli`), the browser test (:mod:`.api` over :mod:`.store`'s
SQLite, served by the web app :mod:`.app` on :mod:`.server`, with :mod:`.access`'s Host / Origin checks) and
the unblinded analysis (:mod:`.results`). Protocol and remote deployment: ``eval/listening/README.md``.
"""
