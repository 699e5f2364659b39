"""Fakes of the outside services Mediagen talks to, speaking their real protocols (DESIGN §10)."""
