"""The bottom layer: typed events, the ports (the Protocols through which the domain
reaches the world) and tracked tasks. Imports nothing from codeloop but ``edits``
and ``policy.types``."""
