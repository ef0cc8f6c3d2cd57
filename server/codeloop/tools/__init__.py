"""The agent's tools.

``base.py``: what a tool is; ``registry.py``: a session's tools, assembled from
tool sources; ``builtin.py``: the built-in source. One module per tool (or per
small family of tools) beside them.
"""
