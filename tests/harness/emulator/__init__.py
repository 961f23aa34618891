"""The moto server's fixes and additions, one module per service; see
../moto_server.py, the launcher, for what each does and why."""
