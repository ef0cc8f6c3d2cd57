"""The headless host: ``codeloop run``, ``codeloop chat``, ``codeloop context``.

``console.py`` prints the loop's events and asks at the terminal; ``app.py``
builds sessions and runs the subcommands.
"""
