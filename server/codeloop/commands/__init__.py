"""The command layer: slash commands, written once for every host.

``parse.py`` reads a line (``/compact keep the API notes``); ``table.py`` holds the
commands, each a function over a ``CommandHost`` (what a host offers: the current
session, a new one, resuming one); ``dispatch`` runs a line and gives a ``Reply``.
The CLI's REPL, the language server and later hosts call the same ``dispatch``, and
the help text (the panel's too) comes from the same table.

Adding a slash command: a function and one ``Command`` entry in ``table.py``.
"""
