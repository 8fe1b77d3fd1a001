"""Engines outside pftlab that call its core functions (the core never imports them)."""
