"""`python -m mediagen.cli`: the same command as the `mediagen` script."""

from mediagen.cli import app

app()
