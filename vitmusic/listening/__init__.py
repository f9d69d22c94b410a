"""Listening tests: blinded stimuli (:mod:`.stimuli`), the browser test server (:mod:`.server`, ratings in
SQLite via :mod:`.store`) and the unblinded analysis (:mod:`.results`). Protocol: ``eval/listening/README.md``.
"""
